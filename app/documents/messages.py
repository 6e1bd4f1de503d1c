"""What a person reads when a file they sent cannot be used, in their language, naming the file."""

from __future__ import annotations

from flask_babel import format_decimal
from flask_babel import gettext as _

from app.documents.extract import DocumentError


def document_error_message(error: DocumentError, filename: str) -> str:
    """One sentence per reason, saying what to send instead."""
    values = error.values
    code = error.code
    if code == "unsupported":
        return _(
            "“%(name)s” is not a kind of file that can be read: PDF, DOCX, PPTX, XLSX, ODT, TXT, "
            "Markdown, HTML or CSV.",
            name=filename,
        )
    if code == "no_text":
        return _("“%(name)s” contains no text (a scan?): send a version with text (OCR).", name=filename)
    if code == "encrypted":
        return _("“%(name)s” is protected by a password: send a copy without a password.", name=filename)
    if code == "too_many_pages":
        return _(
            "“%(name)s” has %(pages)s pages, %(max)s at most: split it into smaller files.",
            name=filename,
            pages=format_decimal(values.get("pages", 0)),
            max=format_decimal(values.get("max", 0)),
        )
    if code == "too_large" and not values.get("mb"):  # refused before its size was known
        return _(
            "“%(name)s” is larger than %(max_mb)s MB, the limit.",
            name=filename,
            max_mb=format_decimal(values.get("max_mb", 0)),
        )
    if code == "too_large":
        return _(
            "“%(name)s” is %(mb)s MB, %(max_mb)s at most.",
            name=filename,
            mb=format_decimal(values.get("mb", 0)),
            max_mb=format_decimal(values.get("max_mb", 0)),
        )
    if code == "bomb":
        return _(
            "“%(name)s” would unpack into far more data than it weighs, and was refused: it may be "
            "malicious.",
            name=filename,
        )
    if code == "timeout":
        return _(
            "Reading “%(name)s” took too long and was stopped: send a smaller or simpler file.", name=filename
        )
    if code == "empty":
        return _("“%(name)s” contains no text.", name=filename)
    return _(
        "“%(name)s” could not be read: the file looks damaged. Open it, save it again and send that copy.",
        name=filename,
    )
