"""Text out of an uploaded file, with the pages and headings that citations point at.

The type is told by the file's content, never by its name alone: a program renamed "rapport.pdf"
is refused, a PDF named "notes.txt" is read as a PDF. Untrusted files are parsed in a child process
(`extract_isolated`), at the lowest CPU priority and with a memory cap, so a malicious or merely
huge one costs the server neither its memory nor the answers' speed.

Libraries: pypdf reads PDFs page by page (markitdown's PDF converter loses the page boundaries that
citations need); markitdown reads DOCX, PPTX and XLSX (its output marks slides and sheets); odfpy
reads ODT, which markitdown has no converter for.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

HEAD_BYTES = 64 * 1024  # enough for every signature below, and the first zip entries
TEXT_KINDS = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".csv": "csv", ".tsv": "csv"}
ZIP_KINDS = ("docx", "pptx", "xlsx", "odt")
# A zip is a bomb when it would unpack past these: real office files stay far below (a 500-page
# report's document.xml is a few MB, compressed about 10:1).
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
MAX_RATIO = 100
BIG_MEMBER_BYTES = 10 * 1024 * 1024
MAX_MEMBERS = 10_000
MEMORY_LIMIT_BYTES = 2 * 1024**3
# Office Open XML's main parts, from [Content_Types].xml; macro-enabled variants are not accepted.
_OOXML_MAIN = {
    b"wordprocessingml.document.main+xml": "docx",
    b"presentationml.presentation.main+xml": "pptx",
    b"spreadsheetml.sheet.main+xml": "xlsx",
}
_OOXML_PARTS = {b"word/document.xml": "docx", b"ppt/presentation.xml": "pptx", b"xl/workbook.xml": "xlsx"}
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# A password-protected DOCX/XLSX/PPTX is an OLE container holding this stream.
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
# Control characters no text file holds (tab, newlines, form feed and DOS's end mark \x1a aside).
_WORD = re.compile(r"\w")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x19\x1b-\x1f\x7f]")


@dataclass(frozen=True)
class Section:
    page: int | None  # 1-based PDF page, PPTX slide, XLSX sheet; None where the format has no pages
    heading: str  # the nearest heading above the text ("" if none); its line is not repeated in text
    text: str  # plain text (Markdown tables), never empty


@dataclass(frozen=True)
class Extracted:
    kind: str  # "pdf" | "docx" | "pptx" | "xlsx" | "odt" | "txt" | "md" | "html" | "csv"
    pages: int  # pages, slides or sheets; 1 for flat text formats
    sections: list[Section]


class DocumentError(Exception):
    """Why a file cannot be read; `code` picks the message (app.documents.messages), `values`
    fill it. Codes: unsupported, no_text, encrypted, corrupt, too_many_pages (pages, max),
    too_large (mb, max_mb), bomb, timeout, empty."""

    def __init__(self, code: str, **values) -> None:
        super().__init__(code, values)
        self.code = code
        self.values = values


def detect_kind(head: bytes, filename: str) -> str:
    """The file's kind from its first bytes (HEAD_BYTES are enough; the whole file works too)."""
    if head.lstrip(b"\t\n\r\f ")[:5] == b"%PDF-":
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(head)
    if head.startswith(_OLE_MAGIC):
        # Old .doc/.xls/.ppt, or a password-protected Office file (which Office saves this way).
        if _ENCRYPTED_PACKAGE in head:
            raise DocumentError("encrypted")
        raise DocumentError("unsupported")
    if not head:
        raise DocumentError("empty")
    if decode_text(head, partial=True) is None:
        raise DocumentError("unsupported")
    return TEXT_KINDS.get(Path(filename).suffix.lower(), "txt")


def _zip_kind(head: bytes) -> str:
    """Reads the zip's first local entries: ODF puts "mimetype" first, stored; Office puts
    [Content_Types].xml first, naming the main part's type."""
    offset = 0
    while head[offset : offset + 4] == b"PK\x03\x04" and offset + 30 <= len(head):
        flags = int.from_bytes(head[offset + 6 : offset + 8], "little")
        method = int.from_bytes(head[offset + 8 : offset + 10], "little")
        size = int.from_bytes(head[offset + 18 : offset + 22], "little")
        name_len = int.from_bytes(head[offset + 26 : offset + 28], "little")
        extra_len = int.from_bytes(head[offset + 28 : offset + 30], "little")
        start = offset + 30 + name_len + extra_len
        name = head[offset + 30 : offset + 30 + name_len]
        data = head[start : start + size] if size else head[start:]
        if name == b"mimetype" and method == 0:
            if data[:size].strip() == b"application/vnd.oasis.opendocument.text":
                return "odt"
            raise DocumentError("unsupported")
        if name == b"[Content_Types].xml":
            types = _inflate(data) if method == 8 else data
            for main, kind in _OOXML_MAIN.items():
                if main in types:
                    return kind
            raise DocumentError("unsupported")
        if flags & 0x08 or not size:  # sizes follow the data: the next entry cannot be found
            break
        offset = start + size
    # Some writers put the parts in another order: their names still tell, in the local entries
    # or in the central directory, at the end (which `detect_file_kind` appends to the head).
    for part, kind in _OOXML_PARTS.items():
        if part in head:
            return kind
    raise DocumentError("unsupported")


def _inflate(data: bytes) -> bytes:
    try:
        return zlib.decompressobj(-15).decompress(data, 1024 * 1024)
    except zlib.error:
        return b""


def decode_text(data: bytes, partial: bool = False) -> str | None:
    """Text as people save it: UTF-8, UTF-16 with its BOM, or Windows' cp1252 (the French
    default of older Windows tools); None for binary content. `partial`: data may be cut
    in the middle of a character (a file's head)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = ["utf-16"]
        if partial:
            data = data[: len(data) // 2 * 2]
    else:
        candidates = ["utf-8-sig", "cp1252"]
    for encoding in candidates:
        try:
            if partial:
                text = codecs.getincrementaldecoder(encoding)().decode(data, final=False)
            else:
                text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return None if _CONTROL.search(text) else text
    return None


def detect_file_kind(path: Path, filename: str) -> str:
    """`detect_kind` of a stored file, reading what the head alone may miss: a zip's central
    directory (at its end), an OLE container's stream names (anywhere in it)."""
    with path.open("rb") as file:
        head = file.read(HEAD_BYTES)
        if head.startswith(_OLE_MAGIC):
            head += file.read()
        elif head.startswith(b"PK\x03\x04") and len(head) == HEAD_BYTES:
            file.seek(max(file.tell(), path.stat().st_size - HEAD_BYTES))
            head += file.read()
    return detect_kind(head, filename)


def extract(path: Path, filename: str, max_pages: int) -> Extracted:
    """Reads the file in this process; raises DocumentError for what a user can fix or be told."""
    kind = detect_file_kind(path, filename)
    if kind in ZIP_KINDS:
        check_zip(path)
    from app.documents import formats

    reader = getattr(formats, f"read_{kind}")
    try:
        pages, sections = reader(path, max_pages)
    except DocumentError:
        raise
    except MemoryError:
        raise DocumentError("bomb") from None
    except Exception as error:  # every library has its own errors for a broken file
        raise DocumentError("corrupt", detail=f"{type(error).__name__}: {error}"[:300]) from error
    if pages > max_pages:
        raise DocumentError("too_many_pages", pages=pages, max=max_pages)
    sections = [s for s in sections if _WORD.search(s.text)]  # an empty sheet is only "| |"
    if not sections:
        raise DocumentError("no_text" if kind == "pdf" and pages else "empty")
    return Extracted(kind=kind, pages=pages, sections=sections)


def check_zip(path: Path) -> None:
    """Refuses an archive that would unpack into far more than it weighs, before any parser opens
    it. Python's zipfile never inflates a member past its declared size, so the declared sizes
    are the ones to check."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:
                raise DocumentError("bomb")
            total = 0
            for member in members:
                total += member.file_size
                ratio = member.file_size / max(member.compress_size, 1)
                if member.file_size > BIG_MEMBER_BYTES and ratio > MAX_RATIO:
                    raise DocumentError("bomb")
            if total > MAX_UNZIPPED_BYTES:
                raise DocumentError("bomb")
            if any(m.flag_bits & 0x1 for m in members):
                raise DocumentError("encrypted")
    except zipfile.BadZipFile as error:
        raise DocumentError("corrupt", detail=str(error)) from error


def _lowest_group_priority(pid: int) -> None:
    """The child's session at nice 19 too, and the child itself only on a core nothing else
    wants. Where the kernel groups processes by session (autogroup, on by default in Debian's
    kernels) nice ranks a process only within its own session, and sessions share the cores
    equally: llama-server runs in a session of its own, so a child niced in the app's session
    still took as much CPU as the answer being read (measured by
    benchmarks/documents_first_token.py). Hence a session of its own (start_new_session), its
    group at nice 19; and SCHED_IDLE, which any other task waking up preempts at once (a niced
    task may first finish its time slice). Neither needs a privilege."""
    try:
        Path(f"/proc/{pid}/autogroup").write_text("19")
    except OSError:  # a kernel without autogroups: nice 19 alone does the job
        pass
    try:
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):  # gone already, or not Linux
        pass


def extract_isolated(
    path: Path, filename: str, max_pages: int, timeout: float = 300, memory_limit: int = MEMORY_LIMIT_BYTES
) -> Extracted:
    """`extract` in a child process at the lowest CPU priority, its address space capped at
    `memory_limit` bytes: whatever the file does to the parser (a crash, a bomb, an endless loop)
    costs only the child."""
    worker = "app.documents.extract_worker"
    # Only the name's extension matters (among text kinds); a NUL in a name could not be passed.
    name = "document" + Path(filename.replace("\0", "")).suffix
    command = [sys.executable, "-m", worker, str(path), name, str(max_pages), str(memory_limit)]
    root = Path(__file__).resolve().parents[2]
    with subprocess.Popen(
        command,
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as child:
        _lowest_group_priority(child.pid)
        try:
            stdout, stderr = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise DocumentError("timeout", seconds=int(timeout)) from None
    done = subprocess.CompletedProcess(command, child.returncode, stdout, stderr)
    try:
        result = json.loads(done.stdout)
    except ValueError:
        result = None
    if not isinstance(result, dict):
        # Out of memory (the cap, or the kernel's OOM killer: SIGKILL) or a crash in a C library:
        # either way the file made the parser fail.
        out_of_memory = done.returncode in (3, -signal.SIGKILL) or b"MemoryError" in done.stderr
        code = "bomb" if out_of_memory else "corrupt"
        raise DocumentError(code, detail=done.stderr[-300:].decode(errors="replace"))
    if "error" in result:
        raise DocumentError(result["error"], **result.get("values", {}))
    sections = [Section(page=p, heading=h, text=t) for p, h, t in result["sections"]]
    return Extracted(kind=result["kind"], pages=result["pages"], sections=sections)


def to_json(extracted: Extracted) -> str:
    sections = [[s.page, s.heading, s.text] for s in extracted.sections]
    return json.dumps({"kind": extracted.kind, "pages": extracted.pages, "sections": sections})


def csv_rows(text: str) -> list[list[str]]:
    """Rows of a CSV as spreadsheets export it: comma, semicolon (French Excel) or tab."""
    sample = text[:8192]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    return [row for row in csv.reader(io.StringIO(text), dialect) if any(cell.strip() for cell in row)]
