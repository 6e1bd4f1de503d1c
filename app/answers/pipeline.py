"""The one way every feature asks a model: the chat, the compare page, the API, benchmarks.

    with answers.place(user_id) as place:        # a place in the queue, or Refused
        ...store the question and the empty answer, under `answer_id`...
        live = answers.start(Asking(...), place, answer_id)
    return answers.sse_response(live)             # or live.follow(), or live.ended.wait()

A place is reserved before anything is stored, so a refused answer leaves nothing behind;
the job then belongs to the server, not to the request, which may end (or never read a byte)
without ending the answer.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC

from flask import current_app
from flask_babel import get_locale

from app.accounts import quotas
from app.accounts.quotas import Charge
from app.answers.live import LiveAnswer
from app.answers.messages import (
    Wording,
    queue_full_message,
    shutting_down_message,
    too_many_of_yours_message,
)
from app.extensions import db
from app.llm import services as llm
from app.llm.catalogue import Entry
from app.llm.scheduler import Failed, Finished, GenerationRequest, Refusal
from app.llm.types import GENERATION_FAILED, ChatMessage, EngineError, GenerationOptions, GenerationStats
from app.models import User

log = logging.getLogger(__name__)


class Refused(Exception):
    """The answer cannot be asked: an HTTP status and a message in the user's language; `code`
    and `extra` name the refusal for scripts (the API's JSON: "quota_exceeded", `resets_at`)."""

    def __init__(
        self,
        status: int,
        message: str,
        retry_after: int | None = None,
        code: str = "",
        extra: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.code = code
        self.extra = extra or {}


@dataclass(frozen=True)
class Prepared:
    """What a question's documents add before it is asked: the passages' text, put before the
    question in its own turn; the sources shown under the answer; what it cost."""

    context: str = ""
    sources: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)


# Run before the answer is queued, off the request (it may wait for documents being indexed):
# given `waited(ready, total)` to report that wait and `cancelled()`; None: nothing to add.
Prepare = Callable[[Callable[[int, int], None], Callable[[], bool]], Prepared | None]


@dataclass(frozen=True)
class Asking:
    """What an answer is asked with."""

    user_id: int
    entry: Entry
    messages: list[ChatMessage]
    options: GenerationOptions
    received_at: float  # perf_counter() when the request arrived
    message_id: int | None = None  # the stored answer it writes; None: nothing stored
    conversation_id: int | None = None
    # Nobody can come back to it (a comparison, an API call): it ends when its reader leaves.
    watched_only: bool = False
    recorded: bool = True  # a Generation record is kept (the dashboard)
    detailed_errors: bool = False  # admins read the technical detail of a failure
    allowed: Callable[[], bool] | None = None  # its author may still have it (checked every 2 s)
    cold: bool = False  # benchmarks: see GenerationRequest
    alone: bool = False
    prepare: Prepare | None = None


@dataclass
class Place:
    user_id: int
    used: bool = False
    charge: Charge | None = None  # counted against its author's day (app.accounts.quotas)


def new_answer_id() -> str:
    """An answer's id: random, so no answer can ever be taken for another."""
    return secrets.token_hex(16)


def over_quota(over: quotas.QuotaExceeded) -> Refused:
    """A day's quota used: 429 saying when it comes back, Retry-After until then."""
    extra = {"resets_at": over.resets_at.replace(tzinfo=UTC).isoformat(), "quota": over.kind}
    return Refused(429, over.message, retry_after=over.seconds_left(), code="quota_exceeded", extra=extra)


@contextmanager
def place(user_id: int, capped: bool = True) -> Iterator[Place]:
    """A place in the queue for one answer, counted against the person's day (their quotas),
    given back unless `start()` used it. Refused: 429 when the person has their answers at once
    already (their groups', else MAX_ANSWERS_PER_USER) or has used the day's answers or tokens,
    503 when the server is full. Benchmarks' answers, no person's (BENCH_USER), are exempt."""
    scheduler = llm().scheduler
    person = db.session.get(User, user_id) if user_id else None
    limits = quotas.limits_for(person) if person is not None else None
    at_once = (limits.answers_at_once or 0) if limits is not None else None
    refusal = scheduler.reserve(user_id, capped=capped, limit=at_once)
    if refusal == Refusal.USER:  # when one of theirs should end
        wait = scheduler.seconds_until_a_place(user_id)
        raise Refused(429, too_many_of_yours_message(at_once or scheduler.max_per_user), retry_after=wait)
    if refusal == Refusal.CLOSED:
        raise Refused(503, shutting_down_message(), retry_after=30)
    if refusal == Refusal.FULL:  # when any should end
        raise Refused(503, queue_full_message(), retry_after=scheduler.seconds_until_a_place())
    held = Place(user_id)
    try:
        try:
            if person is not None:
                held.charge = quotas.charge(person, limits)
        except quotas.QuotaExceeded as over:
            raise over_quota(over) from None
        yield held
    finally:
        if not held.used:
            scheduler.release(user_id)
            if held.charge is not None:
                quotas.refund(held.charge)


def start(asking: Asking, held: Place, answer_id: str) -> LiveAnswer:
    """Hand the answer to the scheduler, as a job of its own."""
    from app.answers import registry

    entry = asking.entry
    locale = str(get_locale() or current_app.config["BABEL_DEFAULT_LOCALE"])
    live = LiveAnswer(
        answer_id,
        asking.user_id,
        entry.id,
        asking.received_at,
        message_id=asking.message_id,
        conversation_id=asking.conversation_id,
        watched_only=asking.watched_only,
        measure={"parameters": asdict(asking.options)} if asking.recorded else None,
        detailed_errors=asking.detailed_errors,
        allowed=asking.allowed,
        words=Wording(current_app._get_current_object(), locale, entry.id, asking.detailed_errors),
    )
    live.charge = held.charge
    answers = registry()
    answers.add(live)
    if asking.prepare is None:
        try:
            _submit(asking, live)
        except BaseException:
            answers.discard(live)
            raise
    else:
        app = current_app._get_current_object()
        threading.Thread(
            target=_prepare_then_submit,
            args=(app, locale, asking, live),
            name=f"prepare-{answer_id[:8]}",
            daemon=True,
        ).start()
    held.used = True
    return live


def _submit(asking: Asking, live: LiveAnswer) -> None:
    scheduler = llm().scheduler
    request = GenerationRequest(
        key=live.id,
        user_id=asking.user_id,
        model_id=asking.entry.id,
        messages=asking.messages,
        options=asking.options,
        cold=asking.cold,
        alone=asking.alone,
        affinity=f"conversation:{asking.conversation_id}" if asking.conversation_id else "",
    )
    scheduler.submit(request, reserved=True, sink=live.receive)
    live.attach(lambda outcome: scheduler.cancel(live.id, outcome))


def _prepare_then_submit(app, locale: str, asking: Asking, live: LiveAnswer) -> None:
    """The question's documents first (waiting for their indexing, finding the passages), then
    the answer queued as any other; its place in the queue was held all along."""
    from flask_babel import force_locale

    with app.app_context(), force_locale(locale):
        scheduler = llm().scheduler
        try:
            prepared = asking.prepare(live.documents_waited, lambda: live.cancel_asked)
        except Exception:
            log.exception("the documents of answer %s could not be read", live.id)
            prepared = None
        if live.cancel_asked:  # Stop while it waited: it ends as any stopped answer
            scheduler.release(asking.user_id)
            live.receive(Finished(live._cancelled, GenerationStats()))
            return
        messages = asking.messages
        if prepared is not None:
            if live.measure is not None:
                live.measure["documents"] = prepared.figures
            if prepared.sources:
                live.cite(prepared.sources)
            if prepared.context and messages and messages[-1].role == "user":
                last = messages[-1]
                messages = [*messages[:-1], replace(last, content=prepared.context + last.content)]
        try:
            _submit(replace(asking, messages=messages), live)
        except Exception:
            log.exception("answer %s could not be queued", live.id)
            scheduler.release(asking.user_id)
            live.receive(Failed(EngineError(GENERATION_FAILED, "could not be queued")))
