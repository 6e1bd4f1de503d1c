"""A question's documents: what it may draw on (its conversation's attachments, the
collections its asker may read), waited for, searched, and stored with it as sent."""

from __future__ import annotations

import time

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


def _scope(conversation: Conversation, user_id: int) -> list[Document]:
    """Documents the conversation's questions may draw on, in a stable order."""
    collections = access.readable_collection_ids(user_id, conversation.collection_ids or [])
    clauses = [sa.and_(Document.conversation_id == conversation.id, Document.collection_id.is_(None))]
    if collections:
        clauses.append(Document.collection_id.in_(collections))
    query = sa.select(Document).where(sa.or_(*clauses), Document.state != "error").order_by(Document.id)
    return list(db.session.scalars(query))


def preparation(question_id: int, user_id: int, budget: int) -> Prepare | None:
    """What to run before answering the question: None when it draws on no document, or
    already has its passages (a regenerated answer reads the same ones, as sent before)."""
    question = db.session.get(Message, question_id)
    if question is None or question.context or (question.sources or {}).get("passages") is not None:
        return None
    conversation = question.conversation
    if not _scope(conversation, user_id):
        return None
    app = current_app._get_current_object()

    def prepare(waited, cancelled) -> Prepared | None:
        return _prepare(app, question_id, user_id, budget, waited, cancelled)

    return prepare


def _prepare(app, question_id: int, user_id: int, budget: int, waited, cancelled) -> Prepared | None:
    started = time.perf_counter()
    question = db.session.get(Message, question_id)
    if question is None:
        return None
    conversation = question.conversation
    own = [d.id for d in _scope(conversation, user_id) if d.message_id == question_id]
    if own:
        wait_until_indexed(own, waited, cancelled, WAIT_SECONDS)
    db.session.expire_all()
    if cancelled():
        return None
    scope = [d for d in _scope(conversation, user_id) if d.state == "ready"]
    waited_seconds = time.perf_counter() - started
    earlier = [m for m in conversation.messages if m.role == "user" and m.id != question_id]
    already_sent = {p.get("chunk_id") for m in earlier for p in (m.sources or {}).get("passages", [])}
    whole_before = {d.id for d in scope if d.message_id in {m.id for m in earlier}} & _sent_whole(earlier)
    described = [{"id": d.id, "tokens": d.tokens, "pages": d.pages, "name": d.filename} for d in scope]
    gathered = gather(
        question.content,
        [d for d in described if d["id"] in own],
        described,
        budget,
        already_sent=already_sent,
        whole_before=whole_before,
        embedder=embedder_for(app),
    )
    if not gathered.context:
        return None
    question.context = gathered.context
    question.sources = gathered.sources
    db.session.commit()
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
