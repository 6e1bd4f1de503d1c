"""One reader per kind of file: each returns (pages, sections) for app.documents.extract, which
has already checked the file's kind by content and, for zips, their unpacked size."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from app.documents.extract import DocumentError, Section, csv_rows, decode_text

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")  # a picture: its description is the only text
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_SLIDE = re.compile(r"^<!-- Slide number: (\d+) -->$", re.M)
_SHEET = re.compile(r"^## (.*)$", re.M)
Pages = tuple[int, list[Section]]


def read_pdf(path: Path, max_pages: int) -> Pages:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, LimitReachedError

    reader = PdfReader(path)
    if reader.is_encrypted:
        # Many PDFs carry only an owner password (no printing, no copying): they open for anyone.
        try:
            opened = reader.decrypt("")
        except (DependencyError, NotImplementedError):
            opened = False
        if not opened:
            raise DocumentError("encrypted")
    count = len(reader.pages)
    if count > max_pages:
        raise DocumentError("too_many_pages", pages=count, max=max_pages)
    headings = _outline_by_page(reader)
    heading, sections, broken = "", [], None
    for index, page in enumerate(reader.pages):
        heading = headings.get(index, heading)
        try:
            text = page.extract_text() or ""
        except LimitReachedError:  # a stream that would inflate past pypdf's limit (75 MB)
            raise DocumentError("bomb") from None
        except Exception as error:
            # One damaged page does not make the other 300 useless: it is left out.
            broken = error
            continue
        sections.append(Section(page=index + 1, heading=heading, text=tidy(text)))
    if broken and not any(s.text for s in sections):
        raise broken  # nothing readable: the file is damaged, not a scan
    return count, sections


def _outline_by_page(reader) -> dict[int, str]:
    """The bookmarks' titles by the page they point at (the last one on a page wins): a PDF's
    only reliable headings."""
    found: dict[int, str] = {}

    def walk(items) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
                continue
            try:
                found[reader.get_destination_page_number(item)] = str(item.title).strip()
            except Exception:  # a bookmark to nowhere is common, and no reason to refuse the file
                continue

    try:
        walk(reader.outline)
    except Exception:
        return {}
    return {page: title for page, title in found.items() if title and page >= 0}


def read_docx(path: Path, max_pages: int) -> Pages:
    with zipfile.ZipFile(path) as archive:
        # Word's count when it saved the file; at least one page more than the explicit breaks
        # (other writers leave a template's count, or none).
        declared = _declared_pages(archive, "docProps/app.xml", rb"<(?:\w+:)?Pages>(\d+)<")
        breaks = len(re.findall(rb'<w:br\b[^>]*w:type="page"', archive.read("word/document.xml")))
    pages = max(declared, 1 + breaks)
    _refuse_past(pages, max_pages)
    return pages, markdown_sections(_markitdown(path, ".docx"))


def read_pptx(path: Path, max_pages: int) -> Pages:
    with zipfile.ZipFile(path) as archive:
        slides = sum(1 for n in archive.namelist() if re.fullmatch(r"ppt/slides/slide\d+\.xml", n))
    _refuse_past(slides, max_pages)
    markdown = _markitdown(path, ".pptx")
    sections = []
    # markitdown writes "<!-- Slide number: N -->" before each slide, then "# Title".
    parts = _SLIDE.split(markdown)
    for number, body in zip(parts[1::2], parts[2::2], strict=True):
        title, lines = "", []
        for line in _COMMENT.sub("", body).splitlines():
            if not title and line.startswith("# "):
                title = line[2:].strip()
            else:
                lines.append(line)
        sections.append(Section(page=int(number), heading=title, text=tidy("\n".join(lines))))
    return slides, sections


def read_xlsx(path: Path, max_pages: int) -> Pages:
    with zipfile.ZipFile(path) as archive:
        sheets = sum(1 for n in archive.namelist() if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n))
    _refuse_past(sheets, max_pages)
    markdown = _markitdown(path, ".xlsx")
    # markitdown writes "## Sheet name" before each sheet's table; a table's lines start with "|".
    parts = _SHEET.split(markdown)
    sections = []
    for number, (name, table) in enumerate(zip(parts[1::2], parts[2::2], strict=True), start=1):
        # pandas' names for blank cells and headers are not the workbook's words.
        table = re.sub(r"(?<=\| )(?:NaN|Unnamed: \d+)(?= \|)", "", table)
        sections.append(Section(page=number, heading=name.strip(), text=tidy(table)))
    return max(sheets, len(sections)), sections


def _markitdown(path: Path, extension: str) -> str:
    from markitdown import MarkItDown, StreamInfo

    with path.open("rb") as stream:
        result = MarkItDown().convert_stream(stream, stream_info=StreamInfo(extension=extension))
    return _IMAGE.sub(r"\1", result.markdown or "")


def read_odt(path: Path, max_pages: int) -> Pages:
    from odf import teletype
    from odf.namespaces import FONS, STYLENS, TABLENS, TEXTNS
    from odf.opendocument import load
    from odf.table import TableRow
    from odf.text import P

    with zipfile.ZipFile(path) as archive:
        if b"encryption-data" in archive.read("META-INF/manifest.xml"):
            raise DocumentError("encrypted")
        pages = _declared_pages(archive, "meta.xml", rb'meta:page-count="(\d+)"')
    document = load(str(path))
    if not pages:
        # Without LibreOffice's count, the explicit page breaks (paragraph styles breaking before).
        breaking = {
            style.getAttrNS(STYLENS, "name")
            for style in document.automaticstyles.childNodes
            for props in style.childNodes
            if getattr(props, "qname", None) == (STYLENS, "paragraph-properties")
            and props.getAttrNS(FONS, "break-before") == "page"
        }
        paragraphs = document.text.getElementsByType(P)
        pages = 1 + sum(1 for p in paragraphs if p.getAttrNS(TEXTNS, "style-name") in breaking)
    _refuse_past(pages, max_pages)
    sections: list[Section] = []
    state = {"heading": "", "lines": []}

    def flush() -> None:
        if text := tidy("\n\n".join(state["lines"])):
            sections.append(Section(page=None, heading=state["heading"], text=text))
        state["lines"] = []

    def walk(node) -> None:
        for child in node.childNodes:
            qname = getattr(child, "qname", None)
            if qname == (TEXTNS, "h"):
                flush()
                state["heading"] = tidy(teletype.extractText(child))
            elif qname == (TEXTNS, "p"):
                state["lines"].append(teletype.extractText(child))
            elif qname == (TABLENS, "table"):
                for row in child.getElementsByType(TableRow):
                    cells = [teletype.extractText(c).strip() for c in row.childNodes if hasattr(c, "qname")]
                    state["lines"].append("| " + " | ".join(cells) + " |")
            elif qname in {(TEXTNS, n) for n in ("list", "list-item", "list-header", "section")}:
                walk(child)

    walk(document.text)
    flush()
    return pages, sections


def read_txt(path: Path, max_pages: int) -> Pages:
    return 1, [Section(page=None, heading="", text=tidy(_text(path)))]


def read_md(path: Path, max_pages: int) -> Pages:
    return 1, markdown_sections(_text(path))


def read_html(path: Path, max_pages: int) -> Pages:
    from markitdown.converters import HtmlConverter

    markdown = HtmlConverter().convert_string(_text(path)).markdown or ""
    return 1, markdown_sections(_IMAGE.sub(r"\1", markdown))


def read_csv(path: Path, max_pages: int) -> Pages:
    rows = csv_rows(_text(path))
    lines = ["| " + " | ".join(cell.strip() for cell in row) + " |" for row in rows]
    return 1, [Section(page=None, heading="", text="\n".join(lines))]


def _text(path: Path) -> str:
    text = decode_text(path.read_bytes())
    if text is None:
        raise DocumentError("unsupported")
    return text


def markdown_sections(markdown: str, page: int | None = None) -> list[Section]:
    """Splits Markdown at its headings (not those inside fenced code); each section's heading is
    the nearest one above its text."""
    sections, heading, lines, fenced = [], "", [], False

    def flush() -> None:
        if text := tidy("\n".join(lines)):
            sections.append(Section(page=page, heading=heading, text=text))
        lines.clear()

    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match:
            flush()
            heading = match[2]
        else:
            lines.append(line)
    flush()
    return sections


def tidy(text: str) -> str:
    """No invisible characters, no trailing spaces, at most one blank line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n").replace("\x00", "")
    text = re.sub(r"[\x01-\x08\x0b\x0e-\x1f\x7f\u200b\ufeff]", "", text)
    text = re.sub(r"[ \t\xa0]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _declared_pages(archive: zipfile.ZipFile, member: str, pattern: bytes) -> int:
    """The page count the office suite wrote when it saved the file (0 when it wrote none)."""
    try:
        found = re.search(pattern, archive.read(member))
    except KeyError:
        return 0
    return int(found[1]) if found else 0


def _refuse_past(pages: int, max_pages: int) -> None:
    if pages > max_pages:
        raise DocumentError("too_many_pages", pages=pages, max=max_pages)
