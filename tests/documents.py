"""Real sample documents for the tests and benchmarks, written with the libraries offices use.

Blocks for the word processors read like Markdown: "# Title" and "## Section" are headings of
level 1 and 2, PAGE_BREAK starts a new page, anything else is a paragraph. So one list of
blocks can become a DOCX, an ODT or a Markdown file, and the tests compare what comes back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

PAGE_BREAK = "\f"
_HEADING = re.compile(r"^(#{1,6}) (.+)$")
# A Unicode font writes French with its œ and ’; without it fpdf2's core fonts cover latin-1,
# which is still every accented letter of French.
_UNICODE_FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
)


def write_pdf(
    path: Path,
    pages: Sequence[str],
    password: str | None = None,
    owner_password: str | None = None,
    bookmarks: Mapping[int, str] | None = None,
) -> Path:
    """A PDF with a real text layer, one string per page (lines kept). Encrypted (AES) when a
    password is given, "" being a PDF anyone opens but only the owner may edit; bookmarks are
    {page number: title}, the outline a reader's side panel shows."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    font = next((f for f in _UNICODE_FONTS if f.exists()), None)
    if font:
        pdf.add_font("Body", fname=str(font))
        pdf.set_font("Body", size=11)
    else:
        pdf.set_font("helvetica", size=11)
    for number, text in enumerate(pages, start=1):
        pdf.add_page()
        if bookmarks and number in bookmarks:
            pdf.start_section(bookmarks[number])
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    if password is not None:
        _encrypt_pdf(path, password, owner_password or password + "-owner")
    return path


def _encrypt_pdf(path: Path, password: str, owner_password: str) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(path))
    writer.encrypt(user_password=password, owner_password=owner_password, algorithm="AES-128")
    with path.open("wb") as out:
        writer.write(out)


def write_image_only_pdf(path: Path, pages: int = 1) -> Path:
    """What a scanner makes: pages that are only a picture, no text layer."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (600, 800), "white")
    ImageDraw.Draw(image).text((50, 50), "Rapport scanné", fill="black")
    pdf = FPDF(format="A4")
    for _ in range(pages):
        pdf.add_page()
        pdf.image(image, x=10, y=10, w=180)
    pdf.output(str(path))
    return path


def write_docx(path: Path, blocks: Iterable[str]) -> Path:
    """A Word document: Markdown-like headings become Word's Heading styles."""
    import docx
    from docx.enum.text import WD_BREAK

    document = docx.Document()
    for block in blocks:
        if block == PAGE_BREAK:
            document.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        elif heading := _HEADING.match(block):
            document.add_heading(heading[2], level=len(heading[1]))
        else:
            document.add_paragraph(block)
    document.save(str(path))
    return path


def write_odt(path: Path, blocks: Iterable[str]) -> Path:
    """An OpenDocument text (LibreOffice's own format), headings as text:h with their level."""
    from odf.opendocument import OpenDocumentText
    from odf.style import ParagraphProperties, Style
    from odf.text import H, P

    document = OpenDocumentText()
    page_break = Style(name="PageBreak", family="paragraph")
    page_break.addElement(ParagraphProperties(breakbefore="page"))
    document.automaticstyles.addElement(page_break)
    for block in blocks:
        if block == PAGE_BREAK:
            document.text.addElement(P(stylename=page_break))
        elif heading := _HEADING.match(block):
            document.text.addElement(H(outlinelevel=len(heading[1]), text=heading[2]))
        else:
            document.text.addElement(P(text=block))
    document.save(str(path))
    return path


def write_pptx(path: Path, slides: Sequence[tuple[str, str]]) -> Path:
    """A presentation, one (title, body) per slide, on PowerPoint's "Title and Content" layout."""
    from pptx import Presentation

    presentation = Presentation()
    layout = presentation.slide_layouts[1]
    for title, body in slides:
        slide = presentation.slides.add_slide(layout)
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    presentation.save(str(path))
    return path


def write_xlsx(path: Path, sheets: dict[str, Sequence[Sequence[object]]]) -> Path:
    """A workbook, sheet name → rows (the first row being the header)."""
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(list(row))
    workbook.save(str(path))
    return path


def numbered_pages(count: int, words: int = 250) -> list[str]:
    """Pages that each say which page they are, padded with prose to a realistic length."""
    filler = (
        "Le présent règlement précise les conditions d'accès aux locaux, la gestion des congés "
        "et la sécurité des données de l'entreprise. "
    )
    per_page = max(1, words // len(filler.split()))
    return [
        f"Page {n} : article {n} du règlement intérieur.\n" + filler * per_page for n in range(1, count + 1)
    ]
