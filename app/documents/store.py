"""Uploaded files: received whole or not at all, checked by content, kept outside static/
under random names, deleted with their records."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from app.documents.extract import DocumentError, detect_file_kind
from app.extensions import db
from app.models import Document, utcnow

log = logging.getLogger(__name__)

_READ = 1024 * 1024
_DIRECTION_MARKS = set("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# An attachment uploaded but never sent with a message: gone after a day.
UNSENT_ATTACHMENT_HOURS = 24


def folder() -> Path:
    path = Path(current_app.config["DOCUMENTS_DIR"])
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def path_of(document: Document) -> Path:
    return folder() / document.stored_as


def limit_bytes() -> int:
    return current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024


def clean_filename(name: str) -> str:
    """The name a file is listed and downloaded under: its last part (no folders), no control
    or direction characters, at most 255 characters; "document" when nothing is left."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable() and c not in _DIRECTION_MARKS)
    name = name.strip().strip(".") or "document"
    return name[:255]


def save(owner_id: int, filename: str, stream, *, collection_id: int | None = None) -> Document:
    """Store an uploaded file and its record (state "waiting": the indexer takes it from there).

    Raises DocumentError ("too_large", "unsupported", "empty") with nothing left behind."""
    filename = clean_filename(filename)
    target = folder() / secrets.token_hex(16)
    digest = hashlib.sha256()
    size = 0
    limit = limit_bytes()
    try:
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            while block := stream.read(_READ):
                size += len(block)
                if size > limit:
                    raise DocumentError("too_large", mb=_megabytes(size), max_mb=limit // (1024 * 1024))
                digest.update(block)
                file.write(block)
        if size == 0:
            raise DocumentError("empty")
        kind = detect_file_kind(target, filename)  # as the extraction will: a zip by its directory
        document = Document(
            owner_id=owner_id,
            collection_id=collection_id,
            filename=filename,
            kind=kind,
            size_bytes=size,
            sha256=digest.hexdigest(),
            stored_as=target.name,
            state="waiting",
        )
        db.session.add(document)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        target.unlink(missing_ok=True)
        raise
    return document


def _megabytes(size: int) -> int:
    return -(-size // (1024 * 1024))


def replace_file(document: Document, filename: str, stream) -> Document:
    """A collection's document replaced by a new version: the new file is stored and indexed;
    the old one, its passages and its file go once the new one is stored."""
    new = save(document.owner_id, filename, stream, collection_id=document.collection_id)
    delete(document)
    return new


def delete(document: Document) -> None:
    """The document, its passages (the database cascades) and its file."""
    stored_as = document.stored_as
    db.session.execute(sa.delete(Document).where(Document.id == document.id))
    db.session.commit()
    (folder() / stored_as).unlink(missing_ok=True)


def remove_files(stored_as: list[str]) -> None:
    """The files of documents whose records were just deleted."""
    for name in stored_as:
        (folder() / name).unlink(missing_ok=True)


def sweep() -> int:
    """Attachments never sent (older than a day) go, and files no record names (a document
    deleted with its conversation or collection: the database cascades, the disk does not).
    Returns how many files went."""
    cutoff = utcnow() - timedelta(hours=UNSENT_ATTACHMENT_HOURS)
    db.session.execute(
        sa.delete(Document).where(
            Document.collection_id.is_(None), Document.conversation_id.is_(None), Document.created_at < cutoff
        )
    )
    db.session.commit()
    named = set(db.session.scalars(sa.select(Document.stored_as)))
    removed = 0
    for path in folder().iterdir():
        if path.is_file() and path.name not in named and len(path.name) == 32:
            # Young files may be an upload whose record is not committed yet.
            if path.stat().st_mtime < time.time() - 600:
                path.unlink(missing_ok=True)
                removed += 1
    return removed
