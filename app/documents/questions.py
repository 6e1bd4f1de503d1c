"""A question's documents: what it may draw on (its conversation's attachments, or the ones an
API call names; the collections its asker may read), waited for, searched — one way for the
chat's stored questions and for API calls, which store nothing."""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app

from app.answers.pipeline import Prepare, Prepared
from app.documents import access
from app.documents.context import gather
from app.documents.indexing import embedder_for, wait_until_indexed
from app.extensions import db
from app.models import Conversation, Document, Message

# A question waits this long at most for its own attachments' indexing.
WAIT_SECONDS = 600


@dataclass(frozen=True)
class Scope:
    """The documents a question may draw on. Collections are checked against their reader
    every time the scope is read (a reader taken off a list reads nothing more from it)."""

    user_id: int
    collection_ids: tuple[int, ...] = ()
    conversation_id: int | None = None  # its conversation's attachments
    document_ids: tuple[int, ...] = ()  # attachments named by an API call (the asker's own)

    def documents(self) -> list[Document]:
        """In a stable order, those not refused by their indexing."""
        collections = access.readable_collection_ids(self.user_id, self.collection_ids)
        own = sa.and_(Document.owner_id == self.user_id, Document.collection_id.is_(None))
        clauses = []
        if self.conversation_id is not None:
            clauses.append(
                sa.and_(Document.conversation_id == self.conversation_id, Document.collection_id.is_(None))
            )
        if self.document_ids:
            clauses.append(sa.and_(Document.id.in_(self.document_ids), own))
        if collections:
            clauses.append(Document.collection_id.in_(collections))
        if not clauses:
            return []
        query = sa.select(Document).where(sa.or_(*clauses), Document.state != "error").order_by(Document.id)
        return list(db.session.scalars(query))


def _conversation_scope(conversation: Conversation, user_id: int) -> Scope:
    return Scope(user_id, tuple(conversation.collection_ids or ()), conversation_id=conversation.id)


def preparation(question_id: int, user_id: int, budget: int) -> Prepare | None:
    """What to run before answering a stored question: None when it draws on no document, or
    already has its passages (a regenerated answer reads the same ones, as sent before). Its
    passages are stored with it, as sent."""
    question = db.session.get(Message, question_id)
    if question is None or question.context or (question.sources or {}).get("passages") is not None:
        return None
    if not _conversation_scope(question.conversation, user_id).documents():
        return None
    app = current_app._get_current_object()

    def prepare(waited, cancelled) -> Prepared | None:
        question = db.session.get(Message, question_id)
        if question is None:
            return None
        conversation = question.conversation
        scope = _conversation_scope(conversation, user_id)
        prepared = prepared_passages(
            app,
            question.content,
            scope,
            budget,
            waited,
            cancelled,
            attached=[d.id for d in scope.documents() if d.message_id == question_id],
            earlier=[m for m in conversation.messages if m.role == "user" and m.id != question_id],
        )
        if prepared is None:
            return None
        question = db.session.get(Message, question_id)
        question.context = prepared.context
        question.sources = prepared.sources
        db.session.commit()
        return prepared

    return prepare


def call_preparation(text: str, scope: Scope, budget: int) -> Prepare | None:
    """What to run before answering an API call (nothing stored): None when it draws on no
    document. The documents it names are waited for, and sent whole when they fit."""
    if not scope.documents():
        return None
    app = current_app._get_current_object()

    def prepare(waited, cancelled) -> Prepared | None:
        return prepared_passages(
            app, text, scope, budget, waited, cancelled, attached=list(scope.document_ids)
        )

    return prepare


def prepared_passages(
    app,
    text: str,
    scope: Scope,
    budget: int,
    waited,
    cancelled,
    *,
    attached: list[int],
    earlier: list[Message] = (),
) -> Prepared | None:
    """The passages for a question `text`: its `attached` documents waited for (sent whole
    when they fit `budget`), the rest of its scope searched; none an `earlier` question of its
    conversation already carries. None when cancelled or when it draws on no document."""
    started = time.perf_counter()
    if attached:
        wait_until_indexed(attached, waited, cancelled, WAIT_SECONDS)
    db.session.expire_all()
    if cancelled():
        return None
    documents = [d for d in scope.documents() if d.state == "ready"]
    waited_seconds = time.perf_counter() - started
    earlier_ids = {m.id for m in earlier}
    already_sent = {p.get("chunk_id") for m in earlier for p in (m.sources or {}).get("passages", [])}
    whole_before = {d.id for d in documents if d.message_id in earlier_ids} & _sent_whole(earlier)
    described = [{"id": d.id, "tokens": d.tokens, "pages": d.pages, "name": d.filename} for d in documents]
    gathered = gather(
        text,
        [d for d in described if d["id"] in attached],
        described,
        budget,
        already_sent=already_sent,
        whole_before=whole_before,
        embedder=embedder_for(app),
    )
    if not gathered.context:
        return None
    figures = {
        "wait_seconds": round(waited_seconds, 3),
        "retrieval_seconds": round(gathered.retrieval_seconds, 4),
        "passages": gathered.passages,
        "passage_tokens": gathered.tokens,
    }
    return Prepared(gathered.context, gathered.sources, figures)


def _sent_whole(earlier: list[Message]) -> set[int]:
    """Documents an earlier question carried whole (their every page is in the conversation)."""
    names = {name for m in earlier for name in (m.sources or {}).get("read", {}).get("whole", [])}
    ids = {p.get("document_id") for m in earlier for p in (m.sources or {}).get("passages", [])}
    if not names:
        return set()
    rows = db.session.execute(sa.select(Document.id, Document.filename).where(Document.id.in_(ids))).all()
    return {row.id for row in rows if row.filename in names}


def budget_for(entry) -> int:
    """Tokens of passages sent with a question to this model: the admin's, else DOCUMENT_TOKENS."""
    from app.models import ModelSetting

    setting = db.session.get(ModelSetting, entry.id)
    configured = current_app.config["DOCUMENT_TOKENS"]
    return setting.document_tokens if setting and setting.document_tokens else configured
