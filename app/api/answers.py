"""An answer asked through the API: the answers pipeline's checks, queue, limits and
measurements, as for the chat; nothing stored but the measurements (the dashboard counts
scripts' answers too). Nobody can come back to an API answer: it ends when its caller leaves."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import current_app, g, request
from flask_babel import gettext as _

from app import answers
from app.answers import registry, sampling
from app.answers.asking import offered_or_refused, stream_place
from app.answers.live import LiveAnswer
from app.answers.pipeline import Asking, Refused, new_answer_id
from app.answers.registry import StreamTicket
from app.answers.stream import sse_response
from app.api import keys
from app.database import end_transaction
from app.documents import access
from app.documents.extract import DocumentError
from app.documents.messages import document_error_message
from app.documents.questions import Scope, budget_for, call_preparation
from app.extensions import db
from app.llm import services as llm
from app.llm.catalogue import Entry
from app.llm.types import ChatMessage, GenerationOptions, Outcome
from app.models import Document

ROLES = ("system", "user", "assistant")
MAX_NAMED = 20  # collections, and documents, one call may name
__all__ = ["Refused", "messages_from", "offered_entry", "options_for", "start", "stream", "collect"]


def offered_entry(model_id) -> Entry:
    """The model's entry when users may pick it; Refused (400, 404 or 503) otherwise."""
    if not isinstance(model_id, str):
        raise Refused(400, _("Pick a model."))
    return offered_or_refused(model_id, 404)


def messages_from(data: dict) -> list[ChatMessage]:
    """`messages` ([{role, content}], OpenAI's shape) or `prompt` (one user message)."""
    limit = current_app.config["MAX_MESSAGE_CHARS"]
    if "messages" in data:
        raw = data["messages"]
        if not isinstance(raw, list) or not raw:
            raise Refused(400, _("“messages” is a list of {role, content}."))
        messages = []
        for item in raw:
            content = item.get("content") if isinstance(item, dict) else None
            if isinstance(content, list):  # OpenAI's content parts: text alone is read
                content = _text_of_parts(content)
            if not isinstance(item, dict) or item.get("role") not in ROLES or not isinstance(content, str):
                raise Refused(400, _("“messages” is a list of {role, content}."))
            messages.append(ChatMessage(item["role"], content))
        if messages[-1].role != "user":
            raise Refused(400, _("The last message must be the user's."))
    else:
        prompt = data.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise Refused(400, _("Write a message first."))
        messages = [ChatMessage("user", prompt.strip())]
    if sum(len(m.content) for m in messages) > limit:
        raise Refused(400, _("This message is too long (%(max)d characters at most).", max=limit))
    return messages


def _text_of_parts(parts: list) -> str:
    """The text of OpenAI's content parts; Refused (400) for any other part (an image, a file):
    these models read text only."""
    texts = [p.get("text") for p in parts if isinstance(p, dict) and p.get("type", "text") == "text"]
    if len(texts) != len(parts) or not all(isinstance(text, str) for text in texts):
        raise Refused(400, _("Only text parts are read: “content” holds {type: text, text} parts."))
    return "".join(texts)


def scope_from(data: dict) -> Scope | None:
    """The documents a call draws on: `collections` (ids or names of collections the key's
    owner may read) and `document_ids` (their own attachments); None when it names none.
    Refused (404) for one they may not read, named as unknown: whether it exists stays hidden."""
    user = g.api_user
    named, ids = data.get("collections", []), data.get("document_ids", [])
    if not isinstance(named, list) or len(named) > MAX_NAMED:
        raise Refused(400, _("“collections” lists %(max)d collection ids or names at most.", max=MAX_NAMED))
    if not isinstance(ids, list) or len(ids) > MAX_NAMED:
        raise Refused(400, _("“document_ids” lists %(max)d ids of your documents at most.", max=MAX_NAMED))
    collections = []
    if named:
        readable = access.readable_collections(user)
        by_id = {c.id: c.id for c in readable}
        by_name = {c.name.casefold(): c.id for c in readable}
        for item in named:
            if isinstance(item, str):
                found = by_name.get(item.strip().casefold())
            else:
                found = by_id.get(item) if isinstance(item, int) and not isinstance(item, bool) else None
            if found is None:
                raise Refused(404, _("Unknown collection: “%(name)s”.", name=str(item)[:100]))
            collections.append(found)
    documents = []
    for item in ids:
        document = _own_document(item)
        if document.state == "error":
            error = DocumentError(document.error_code, **(document.error_values or {}))
            raise Refused(400, document_error_message(error, document.filename))
        documents.append(document.id)
    if not collections and not documents:
        return None
    return Scope(user.id, tuple(dict.fromkeys(collections)), document_ids=tuple(dict.fromkeys(documents)))


def _own_document(item):
    if isinstance(item, int) and not isinstance(item, bool) and 0 < item < 2**63:
        document = db.session.get(Document, item)
        if document and document.owner_id == g.api_user.id and document.collection_id is None:
            return document
    raise Refused(404, _("Unknown document: %(id)s.", id=str(item)[:40]))


def preparation(entry: Entry, messages: list[ChatMessage], scope: Scope | None):
    """The retrieval run before answering, as in the chat: the passages go before the last
    user message; nothing is stored."""
    if scope is None:
        return None
    return call_preparation(messages[-1].content, scope, budget_for(entry))


def sources_of(live: LiveAnswer) -> dict:
    """The passages the answer was written from ({} when it drew on no document)."""
    return next((event.data for event in list(live.events) if event.name == "sources"), {})


def options_for(entry: Entry, data: dict) -> GenerationOptions:
    """The configured and the admin's options, with the caller's sampling choices within the
    admin's limits (the chat's rules: temperature, top_p, top_k, max_tokens)."""
    config = current_app.config
    limit = sampling.answer_limit(entry, config["MAX_ANSWER_TOKENS"])
    try:
        chosen = sampling.parse({k: v for k, v in data.items() if v is not None}, limit)
    except sampling.Refused as refused:
        raise Refused(400, str(refused)) from None
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise Refused(400, _("“seed” is a whole number."))
    return llm().catalogue.options_for(entry, sampling.configured(seed), think=None, chosen=chosen)


def with_system_prompt(entry: Entry, messages: list[ChatMessage]) -> list[ChatMessage]:
    """The admin's system prompt for the model, unless the caller gave one."""
    system = entry.prefs.system_prompt.strip()
    if system and not any(m.role == "system" for m in messages):
        return [ChatMessage("system", system), *messages]
    return messages


def start(
    entry: Entry,
    messages: list[ChatMessage],
    options: GenerationOptions,
    capped: bool = True,
    scope: Scope | None = None,
) -> LiveAnswer:
    """Start the answer (Refused 429 or 503 when its author or the server is full). `capped`:
    the per-person bound applies; a comparison's second and later answers are one request's.
    `scope`: the documents its passages are looked for in, first."""
    received_at = time.perf_counter()
    user = g.api_user
    key_id = g.api_key.id
    with answers.place(user.id, capped=capped) as held:
        asking = Asking(
            user_id=user.id,
            entry=entry,
            messages=with_system_prompt(entry, messages),
            options=options,
            received_at=received_at,
            watched_only=True,
            detailed_errors=user.is_admin,
            allowed=_key_still_valid(key_id),
            prepare=preparation(entry, messages, scope),
        )
        return answers.start(asking, held, new_answer_id())


def _key_still_valid(key_id: int) -> Callable[[], bool]:
    app = current_app._get_current_object()

    def valid() -> bool:
        with app.app_context():
            return keys.still_valid(key_id)

    return valid


def a_place_to_wait():
    """A stream's place for this request, taken before any answer starts (every waiting request
    holds a server thread, streamed or not); Refused (503) when the server has none left."""
    return stream_place(g.api_user.id, resumable=False)


def stream(live: LiveAnswer, ticket: StreamTicket, frames=None):
    """The answer as an event stream (the chat's, unless OpenAI's `frames`)."""
    try:
        registry().settle(ticket)
        end_transaction()
    except BaseException:
        registry().close_stream(ticket)
        raise
    return sse_response(live, ticket, frames=frames, readable=_key_still_valid(g.api_key.id))


def collect(lives: list[LiveAnswer], ticket: StreamTicket) -> list[LiveAnswer]:
    """Wait for whole answers (no streaming to the caller); a caller who leaves ends them."""
    client_gone = request.environ.get("waitress.client_disconnected", lambda: False)
    for live in lives:
        live.watch()
    try:
        end_transaction()  # no transaction held while the models work
        for live in lives:
            while not live.ended.wait(0.25):
                if client_gone():
                    for other in lives:
                        other.cancel(Outcome.DISCONNECTED)
        return lives
    finally:
        for live in lives:
            live.unwatch()
        registry().close_stream(ticket)


def cancel(lives: list[LiveAnswer]) -> None:
    for live in lives:
        live.cancel(Outcome.STOPPED)
    for live in lives:
        live.ended.wait(5)


def retry_after(response, refused: Refused):
    if refused.retry_after:
        response.headers["Retry-After"] = str(refused.retry_after)
    return response
