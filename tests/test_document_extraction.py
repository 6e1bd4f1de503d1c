"""Text out of the files people attach, on real files written by the libraries offices use
(tests/documents.py), and every refusal a user can cause, with its message in their language."""

from __future__ import annotations

import os
import sys
import threading
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import psutil
import pytest
from flask_babel import force_locale

from app import create_app
from app.documents.extract import DocumentError, detect_kind, extract, extract_isolated
from app.documents.messages import document_error_message
from config import TestConfig
from tests.documents import (
    PAGE_BREAK,
    numbered_pages,
    write_docx,
    write_image_only_pdf,
    write_odt,
    write_pdf,
    write_pptx,
    write_xlsx,
)

MAX_PAGES = 500


def refusal(path: Path, filename: str | None = None, max_pages: int = MAX_PAGES) -> DocumentError:
    with pytest.raises(DocumentError) as raised:
        extract(path, filename or path.name, max_pages)
    return raised.value


# PDF


def test_a_pdf_keeps_its_page_numbers_for_citations(tmp_path):
    pdf = write_pdf(tmp_path / "reglement.pdf", ["Accès aux locaux", "Congés payés", "Télétravail"])

    document = extract(pdf, "reglement.pdf", MAX_PAGES)

    assert (document.kind, document.pages) == ("pdf", 3)
    assert [(s.page, s.text) for s in document.sections] == [
        (1, "Accès aux locaux"),
        (2, "Congés payés"),
        (3, "Télétravail"),
    ]


def test_french_accents_and_typographic_quotes_survive_a_pdf(tmp_path):
    text = "L’œuvre déjà évoquée : « où est-ce ? » — ça s’écrit ainsi."
    pdf = write_pdf(tmp_path / "note.pdf", [text])

    assert extract(pdf, "note.pdf", MAX_PAGES).sections[0].text == text


def test_a_pdf_bookmark_names_the_pages_under_it(tmp_path):
    pages = ["Sommaire", "Article 1", "Article 2", "Barème"]
    pdf = write_pdf(tmp_path / "guide.pdf", pages, bookmarks={2: "Congés", 4: "Annexes"})

    headings = [s.heading for s in extract(pdf, "guide.pdf", MAX_PAGES).sections]

    assert headings == ["", "Congés", "Congés", "Annexes"]


def test_a_scanned_pdf_is_refused_saying_it_has_no_text(tmp_path):
    scan = write_image_only_pdf(tmp_path / "scan.pdf", pages=2)

    assert refusal(scan).code == "no_text"


def test_a_password_protected_pdf_is_refused_as_encrypted(tmp_path):
    pdf = write_pdf(tmp_path / "paie.pdf", ["Salaires"], password="secret")

    assert refusal(pdf).code == "encrypted"


def test_a_pdf_locked_only_against_editing_is_read(tmp_path):
    pdf = write_pdf(tmp_path / "charte.pdf", ["Charte informatique"], password="", owner_password="admin")

    assert extract(pdf, "charte.pdf", MAX_PAGES).sections[0].text == "Charte informatique"


def test_a_truncated_pdf_is_refused_as_corrupt(tmp_path):
    whole = write_pdf(tmp_path / "whole.pdf", numbered_pages(5)).read_bytes()
    cut = tmp_path / "coupé.pdf"
    cut.write_bytes(whole[: len(whole) // 2])

    assert refusal(cut).code == "corrupt"


def test_a_pdf_over_the_page_limit_is_refused_with_its_page_count(tmp_path):
    pdf = write_pdf(tmp_path / "long.pdf", numbered_pages(6, words=10))

    error = refusal(pdf, max_pages=5)

    assert (error.code, error.values) == ("too_many_pages", {"pages": 6, "max": 5})


def test_a_pdf_page_that_inflates_like_a_zip_bomb_is_refused(tmp_path):
    pdf = write_pdf_with_inflating_page(tmp_path / "piege.pdf", megabytes=80)
    assert pdf.stat().st_size < 1024 * 1024

    assert refusal(pdf).code == "bomb"


def write_pdf_with_inflating_page(path: Path, megabytes: int) -> Path:
    """A real PDF whose second page's content stream inflates to `megabytes` of spaces."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import EncodedStreamObject, NameObject

    writer = PdfWriter(clone_from=PdfReader(write_pdf(path.with_suffix(".plain.pdf"), ["Un", "Deux"])))
    deflate = zlib.compressobj(9)
    compressed = deflate.compress(b"BT (x) Tj ET ")
    for _ in range(megabytes):
        compressed += deflate.compress(b" " * 1024 * 1024)
    stream = EncodedStreamObject()
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    stream._data = compressed + deflate.flush()
    writer.pages[1][NameObject("/Contents")] = writer._add_object(stream)
    with path.open("wb") as out:
        writer.write(out)
    return path


def test_a_pdf_page_the_reader_cannot_parse_is_left_out_and_the_others_kept(tmp_path, monkeypatch):
    from pypdf import PageObject

    pdf = write_pdf(tmp_path / "manuel.pdf", ["Un", "Deux", "Trois"])
    readable = PageObject.extract_text

    def fails_on_deux(page, *args, **kwargs):
        text = readable(page, *args, **kwargs)
        if text == "Deux":
            raise KeyError("/Widths")  # as pypdf does on some fonts it does not expect
        return text

    monkeypatch.setattr(PageObject, "extract_text", fails_on_deux)

    sections = extract(pdf, "manuel.pdf", MAX_PAGES).sections

    assert [(s.page, s.text) for s in sections] == [(1, "Un"), (3, "Trois")]


# The kind is told by content


def test_a_program_renamed_pdf_is_refused_by_its_content(tmp_path):
    program = tmp_path / "rapport.pdf"
    program.write_bytes(Path(sys.executable).read_bytes()[: 256 * 1024])

    assert refusal(program).code == "unsupported"


def test_a_pdf_named_txt_is_read_as_a_pdf(tmp_path):
    pdf = write_pdf(tmp_path / "notes.txt", ["Compte rendu"])

    document = extract(pdf, "notes.txt", MAX_PAGES)

    assert (document.kind, document.sections[0].text) == ("pdf", "Compte rendu")


def test_a_zip_that_is_no_office_document_is_refused(tmp_path):
    archive = tmp_path / "rapport.docx"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("rapport.txt", "du texte")

    assert refusal(archive).code == "unsupported"


def test_office_files_are_told_apart_by_the_parts_inside_not_their_names(tmp_path):
    docx = write_docx(tmp_path / "a", ["Texte"])
    pptx = write_pptx(tmp_path / "b", [("Titre", "Texte")])
    xlsx = write_xlsx(tmp_path / "c", {"Feuille": [["a"]]})
    odt = write_odt(tmp_path / "d", ["Texte"])

    kinds = [detect_kind(path.read_bytes()[:65536], "fichier.pdf") for path in (docx, pptx, xlsx, odt)]

    assert kinds == ["docx", "pptx", "xlsx", "odt"]


def test_a_word_document_zipped_in_another_order_is_still_recognised(tmp_path):
    # As `zip -r` makes it from a folder: pictures first, [Content_Types].xml somewhere later.
    written = write_docx(tmp_path / "written.docx", ["Texte"])
    docx = tmp_path / "rezipped.docx"
    with zipfile.ZipFile(written) as source, zipfile.ZipFile(docx, "w", zipfile.ZIP_DEFLATED) as target:
        target.writestr("word/media/image1.png", os.urandom(200 * 1024))
        for item in reversed(source.infolist()):
            target.writestr(item.filename, source.read(item))

    assert extract(docx, "rezipped.docx", MAX_PAGES).sections[0].text == "Texte"


def test_an_empty_file_is_refused_as_empty(tmp_path):
    empty = tmp_path / "vide.txt"
    empty.write_bytes(b"")

    assert refusal(empty).code == "empty"


def test_a_password_protected_word_file_is_refused_as_encrypted(tmp_path):
    import msoffcrypto.format.ooxml

    plain = write_docx(tmp_path / "plain.docx", ["Confidentiel"])
    locked = tmp_path / "verrouillé.docx"
    with plain.open("rb") as source, locked.open("wb") as target:
        msoffcrypto.format.ooxml.OOXMLFile(source).encrypt("secret", target)

    assert refusal(locked).code == "encrypted"


# Office and OpenDocument


def test_a_word_document_keeps_its_headings(tmp_path):
    docx = write_docx(
        tmp_path / "procedure.docx",
        ["# Congés", "Les congés se posent sur le portail.", "## Validation", "Le responsable valide."],
    )

    document = extract(docx, "procedure.docx", MAX_PAGES)

    assert document.kind == "docx"
    assert [(s.heading, s.text) for s in document.sections] == [
        ("Congés", "Les congés se posent sur le portail."),
        ("Validation", "Le responsable valide."),
    ]


def test_a_word_document_counts_its_pages_against_the_limit(tmp_path):
    blocks = [block for page in numbered_pages(6, words=10) for block in (page, PAGE_BREAK)][:-1]
    docx = write_docx(tmp_path / "long.docx", blocks)

    error = refusal(docx, max_pages=5)

    assert (error.code, error.values) == ("too_many_pages", {"pages": 6, "max": 5})


def test_a_zip_bomb_inside_a_docx_is_refused_without_filling_memory(tmp_path):
    docx = write_docx_with_padding(tmp_path / "piege.docx", megabytes=150)
    assert docx.stat().st_size < 1024 * 1024  # 150 MB of text weighing a few hundred KB
    tracemalloc.start()

    error = refusal(docx)

    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert error.code == "bomb"
    assert peak < 20 * 1024 * 1024  # the document's text was never unpacked


def write_docx_with_padding(path: Path, megabytes: int) -> Path:
    """A valid DOCX whose text part holds a huge, highly compressible XML comment."""
    plain = write_docx(path.with_suffix(".plain.docx"), ["Bonjour"])
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename != "word/document.xml":
                target.writestr(item, source.read(item))
                continue
            xml = source.read(item)
            declaration_end = xml.index(b"?>") + 2
            with target.open("word/document.xml", "w", force_zip64=True) as member:
                member.write(xml[:declaration_end] + b"<!--")
                for _ in range(megabytes):
                    member.write(b"0" * 1024 * 1024)
                member.write(b"-->" + xml[declaration_end:])
    return path


def test_a_presentation_keeps_its_slide_numbers_and_titles(tmp_path):
    pptx = write_pptx(
        tmp_path / "budget.pptx", [("Budget 2026", "Hausse de 5 %"), ("Équipe", "Trois recrues")]
    )

    document = extract(pptx, "budget.pptx", MAX_PAGES)

    assert (document.kind, document.pages) == ("pptx", 2)
    assert [(s.page, s.heading, s.text) for s in document.sections] == [
        (1, "Budget 2026", "Hausse de 5 %"),
        (2, "Équipe", "Trois recrues"),
    ]


def test_a_workbook_keeps_each_sheet_as_a_page_named_after_it(tmp_path):
    xlsx = write_xlsx(
        tmp_path / "suivi.xlsx",
        {
            "Ventes": [["Mois", "Montant"], ["janvier", 1200]],
            "Coûts": [["Poste", "Montant"], ["loyer", None]],
        },
    )

    document = extract(xlsx, "suivi.xlsx", MAX_PAGES)

    assert (document.kind, document.pages) == ("xlsx", 2)
    assert [(s.page, s.heading) for s in document.sections] == [(1, "Ventes"), (2, "Coûts")]
    assert "| janvier | 1200 |" in document.sections[0].text
    assert "| loyer |  |" in document.sections[1].text  # a blank cell, not pandas' "NaN"


def test_an_opendocument_text_keeps_its_headings_and_pages(tmp_path):
    odt = write_odt(
        tmp_path / "compte-rendu.odt",
        ["# Réunion", "Ordre du jour validé.", PAGE_BREAK, "## Décisions", "Budget accepté."],
    )

    document = extract(odt, "compte-rendu.odt", MAX_PAGES)

    assert (document.kind, document.pages) == ("odt", 2)
    assert [(s.heading, s.text) for s in document.sections] == [
        ("Réunion", "Ordre du jour validé."),
        ("Décisions", "Budget accepté."),
    ]


def test_a_password_protected_opendocument_text_is_refused_as_encrypted(tmp_path):
    odt = lock_odt(write_odt(tmp_path / "plain.odt", ["Confidentiel"]), tmp_path / "verrouillé.odt")

    assert refusal(odt).code == "encrypted"


def lock_odt(plain: Path, path: Path) -> Path:
    """What LibreOffice saves with a password: content.xml encrypted, and the manifest saying how."""
    encryption = (
        '<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="AAAA">'
        '<manifest:algorithm manifest:algorithm-name="Blowfish CFB" manifest:initialisation-vector="AAAA"/>'
        '<manifest:key-derivation manifest:key-derivation-name="PBKDF2" manifest:iteration-count="1024" '
        'manifest:salt="AAAA"/></manifest:encryption-data>'
    )
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "content.xml":
                data = os.urandom(len(data))
            elif item.filename == "META-INF/manifest.xml":
                entry = b'manifest:full-path="content.xml" manifest:media-type="text/xml"'
                locked = entry + b">" + encryption.encode() + b"</manifest:file-entry>"
                data = data.replace(entry + b"/>", locked)
                assert b"encryption-data" in data
            target.writestr(item, data)
    return path


# Text formats


def test_french_accents_survive_a_cp1252_text_file(tmp_path):
    text = "Élève, çà et là : déjà vu — « œuvre »"
    note = tmp_path / "note.txt"
    note.write_bytes(text.encode("cp1252"))

    assert extract(note, "note.txt", MAX_PAGES).sections[0].text == text


def test_a_utf16_text_file_is_read_by_its_byte_order_mark(tmp_path):
    note = tmp_path / "note.txt"
    note.write_bytes("Bonjour l'été".encode("utf-16"))

    assert extract(note, "note.txt", MAX_PAGES).sections[0].text == "Bonjour l'été"


def test_a_markdown_file_is_split_at_its_headings_but_not_inside_code(tmp_path):
    note = tmp_path / "wiki.md"
    note.write_text("# Installation\nLancer :\n```\n# pas un titre\n```\n## Mise à jour\nRelancer.\n")

    sections = extract(note, "wiki.md", MAX_PAGES).sections

    assert [(s.heading, s.text) for s in sections] == [
        ("Installation", "Lancer :\n```\n# pas un titre\n```"),
        ("Mise à jour", "Relancer."),
    ]


def test_an_html_page_gives_its_text_and_headings_without_its_scripts(tmp_path):
    page = tmp_path / "intranet.html"
    page.write_text(
        "<html><head><script>steal()</script><style>p{color:red}</style></head><body>"
        "<h1>Procédure</h1><p>Étape un.</p><h2>Contacts</h2><p>Le support.</p></body></html>"
    )

    sections = extract(page, "intranet.html", MAX_PAGES).sections

    assert [(s.heading, s.text) for s in sections] == [
        ("Procédure", "Étape un."),
        ("Contacts", "Le support."),
    ]


def test_a_french_csv_with_semicolons_keeps_its_columns(tmp_path):
    table = tmp_path / "notes-de-frais.csv"
    table.write_bytes("Nom;Service;Montant\nDupont;Comptabilité;1 200,50\n".encode("cp1252"))

    text = extract(table, "notes-de-frais.csv", MAX_PAGES).sections[0].text

    assert text == "| Nom | Service | Montant |\n| Dupont | Comptabilité | 1 200,50 |"


# In a child process


def test_isolated_extraction_reads_the_same_text_as_in_process(tmp_path):
    pdf = write_pdf(tmp_path / "reglement.pdf", numbered_pages(3))

    assert extract_isolated(pdf, "reglement.pdf", MAX_PAGES) == extract(pdf, "reglement.pdf", MAX_PAGES)


def test_isolated_extraction_reports_a_refusal_with_its_values(tmp_path):
    pdf = write_pdf(tmp_path / "long.pdf", numbered_pages(3, words=10))

    with pytest.raises(DocumentError) as raised:
        extract_isolated(pdf, "long.pdf", max_pages=2)

    assert (raised.value.code, raised.value.values) == ("too_many_pages", {"pages": 3, "max": 2})


def test_isolated_extraction_stops_a_parser_that_never_ends(tmp_path):
    # A pipe nobody writes to: reading it blocks for ever, as a parser caught in a loop would.
    stuck = tmp_path / "bloqué.txt"
    os.mkfifo(stuck)
    before = set(psutil.Process().children())  # servers other tests of the run keep

    with pytest.raises(DocumentError) as raised:
        extract_isolated(stuck, "bloqué.txt", MAX_PAGES, timeout=2)

    assert raised.value.code == "timeout"
    assert set(psutil.Process().children()) <= before  # the stuck child was killed, not left behind


def test_isolated_extraction_refuses_a_file_that_exhausts_its_memory_cap(tmp_path):
    cap = 256 * 1024 * 1024
    small = tmp_path / "note.txt"
    small.write_text("Une note courte.")
    huge = tmp_path / "journal.txt"
    with huge.open("w") as out:
        for _ in range(100):
            out.write("ligne de journal déjà écrite\n" * 36_000)  # ~1 MB each, 100 MB in all
    assert extract_isolated(small, "note.txt", MAX_PAGES, memory_limit=cap).sections  # the cap leaves room

    with pytest.raises(DocumentError) as raised:
        extract_isolated(huge, "journal.txt", MAX_PAGES, memory_limit=cap)

    assert raised.value.code == "bomb"


def test_isolated_extraction_runs_at_the_lowest_cpu_priority(tmp_path):
    pdf = write_pdf(tmp_path / "long.pdf", numbered_pages(60))
    seen: set[int] = set()
    thread = threading.Thread(target=extract_isolated, args=(pdf, "long.pdf", MAX_PAGES))
    thread.start()
    while thread.is_alive():
        for child in psutil.Process().children():
            try:
                seen.add(child.nice())
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.01)
    thread.join()

    assert 19 in seen


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="a kernel without autogroups")
def test_isolated_extraction_is_niced_against_other_sessions_too(tmp_path):
    # llama-server runs in a session of its own; sessions share the cores equally whatever
    # their processes' nice, unless the session's group itself is niced.
    pdf = write_pdf(tmp_path / "long.pdf", numbered_pages(60))
    seen: set[str] = set()
    thread = threading.Thread(target=extract_isolated, args=(pdf, "long.pdf", MAX_PAGES))
    thread.start()
    while thread.is_alive():
        for child in psutil.Process().children():
            try:
                # ("/autogroup-12 nice 19"; empty while the child is exiting)
                words = Path(f"/proc/{child.pid}/autogroup").read_text().split()
            except OSError:
                continue
            if words:
                seen.add(words[-1])
        time.sleep(0.01)
    thread.join()

    assert "19" in seen  # (set a moment after the child starts)


def test_isolated_extraction_leaves_the_cores_to_any_other_task(tmp_path):
    # SCHED_IDLE: a task waking up (llama-server's threads between two steps) takes the core at
    # once, where a niced task might first finish its time slice.
    pdf = write_pdf(tmp_path / "long.pdf", numbered_pages(60))
    seen: set[int] = set()
    thread = threading.Thread(target=extract_isolated, args=(pdf, "long.pdf", MAX_PAGES))
    thread.start()
    while thread.is_alive():
        for child in psutil.Process().children():
            try:
                seen.add(os.sched_getscheduler(child.pid))
            except OSError:
                pass
        time.sleep(0.01)
    thread.join()

    assert os.SCHED_IDLE in seen  # (set a moment after the child starts)


# Messages


@pytest.fixture(scope="module")
def flask_app():
    return create_app(TestConfig)


def message(flask_app, language: str, error: DocumentError, filename: str) -> str:
    with flask_app.test_request_context(), force_locale(language):
        return document_error_message(error, filename)


def test_a_french_reader_is_told_a_scanned_pdf_needs_an_ocr_copy(flask_app):
    text = message(flask_app, "fr", DocumentError("no_text"), "rapport.pdf")

    assert (
        text == "« rapport.pdf » ne contient pas de texte (un scan ?) : envoyez une version avec texte (OCR)."
    )


def test_a_reader_is_told_the_page_count_and_the_limit_in_their_numbers(flask_app):
    error = DocumentError("too_many_pages", pages=1612, max=500)

    english = message(flask_app, "en", error, "manual.pdf")
    french = message(flask_app, "fr", error, "manuel.pdf")

    assert "1,612 pages, 500 at most" in english
    assert french.startswith("« manuel.pdf » fait 1\u202f612 pages, 500 au plus")


@pytest.mark.parametrize(
    "code",
    [
        "unsupported",
        "no_text",
        "encrypted",
        "corrupt",
        "too_many_pages",
        "too_large",
        "bomb",
        "timeout",
        "empty",
    ],
)
def test_every_refusal_names_the_file_in_both_languages(flask_app, code):
    error = DocumentError(code, pages=612, max=500, mb=34, max_mb=20)

    english = message(flask_app, "en", error, "budget.xlsx")
    french = message(flask_app, "fr", error, "budget.xlsx")

    assert "budget.xlsx" in english and "budget.xlsx" in french
    assert english != french


def test_a_french_reader_is_told_the_files_size_and_the_limit_in_mo(flask_app):
    text = message(flask_app, "fr", DocumentError("too_large", mb=34, max_mb=20), "rapport.pdf")

    assert text == "« rapport.pdf » fait 34 Mo, 20 au plus."


def test_a_file_refused_before_its_size_is_known_is_told_the_limit_alone(flask_app):
    # The web server stops reading a request past its limit: the file's size is never known.
    text = message(flask_app, "fr", DocumentError("too_large", max_mb=20), "rapport.pdf")

    assert text == "« rapport.pdf » dépasse 20 Mo, la limite."
