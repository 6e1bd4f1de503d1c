"""A documents suite's documents, indexed for a run, and whether retrieval found a question's
passage: one piece of code for the Benchmarks page and benchmarks/retrieval.py.

The documents are indexed as any upload is (stored, extracted, cut, embedded when an embedding
model exists), owned by the run's admin in no collection and no conversation: nobody else can
search them, no page lists them, and they are deleted when the run ends.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from app.bench.suites import Suite, document_files
from app.documents import store
from app.documents.indexing import embedder_for, index_document
from app.documents.retrieval import Passage, search
from app.extensions import db
from app.models import Document, User

RECALL_AT = 5  # passages retrieved per question, as recall@5 counts them


class DocumentsError(RuntimeError):
    """A suite's document that could not be indexed; the message names it."""


def index_files(paths: list[Path], owner_id: int, embed=None) -> dict[str, int]:
    """Each file stored and indexed now (synchronously, in an app context): {file name: document id}.
    `embed`: the passages' embedding function (app.documents.indexing), None for full text alone.
    Raises DocumentsError, the documents indexed so far removed, when one fails."""
    ids: dict[str, int] = {}
    try:
        for path in paths:
            with path.open("rb") as stream:
                document = store.save(owner_id, path.name, stream)
            ids[path.name] = document.id
            index_document(document.id, embed)
            indexed = db.session.get(Document, document.id)
            db.session.refresh(indexed)
            if indexed.state != "ready":
                raise DocumentsError(f"{path.name}: {indexed.error_code or indexed.state}")
    except BaseException:
        remove(list(ids.values()))
        raise
    return ids


def remove(document_ids: list[int]) -> None:
    """The documents, their passages and their files."""
    for document_id in document_ids:
        document = db.session.get(Document, document_id)
        if document is not None:
            store.delete(document)


def _flat(text: str) -> str:
    # Passages are cut at sentence ends and rejoined with line breaks: compare words, not spacing.
    return " ".join(text.split())


def passage_found(passages: list[Passage] | list[dict], source: str, passage: str) -> bool:
    """Whether one of the first RECALL_AT passages (Passage objects, or the sources' dicts as a
    prompt stores them) comes from `source` and holds `passage` word for word."""
    wanted = _flat(passage)
    for found in passages[:RECALL_AT]:
        name = found["name"] if isinstance(found, dict) else found.document_name
        text = found["text"] if isinstance(found, dict) else found.text
        if name == source and wanted in _flat(text):
            return True
    return False


class Library:
    """A run's indexed documents: the passages for each of its questions, searched as the chat
    searches (full text and, with an embedding model, vectors)."""

    def __init__(self, ids: dict[str, int], embedder=None) -> None:
        self.ids = ids
        self.embedder = embedder

    @classmethod
    def of_suite(cls, suite: Suite, folder: Path, owner_id: int) -> Library:
        """The suite's documents indexed now, owned by `owner_id` (the run's admin)."""
        from flask import current_app

        model = embedder_for(current_app)
        embed = (lambda texts: model.embed(texts, "passage")) if model else None
        return cls(index_files(document_files(suite, folder), owner_id, embed), model)

    def passages(self, question: str) -> list[Passage]:
        return search(question, list(self.ids.values()), RECALL_AT, "hybrid", embedder=self.embedder)

    def remove(self) -> None:
        remove(list(self.ids.values()))
        self.ids = {}


def owner_for(user_id: int | None) -> int:
    """Who owns a run's documents: its admin; for a command-line run, the first admin."""
    if user_id is not None and db.session.get(User, user_id) is not None:
        return user_id
    admin = db.session.scalar(sa.select(User.id).where(User.is_admin.is_(True)).order_by(User.id))
    if admin is None:
        raise DocumentsError("a documents suite needs an administrator's account to hold its documents")
    return admin
