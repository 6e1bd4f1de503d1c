"""Turning a generation's events into a Server-Sent Events response, and saving the answer.

The answer is saved every few seconds while it streams and once more when the stream ends,
however it ends (done, Stop, closed tab, error), in a `finally`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy.exc import SQLAlchemyError

from app.chat.services import save_answer
from app.extensions import db
from app.llm.scheduler import Failed, Finished, Job, Queued
from app.llm.types import (
    ENGINE_BUSY,
    ENGINE_UNAVAILABLE,
    ENGINE_UNREACHABLE,
    FIRST_TOKEN_TIMEOUT,
    LOAD_TIMEOUT,
    MODEL_NOT_FOUND,
    MODEL_TOO_LARGE,
    MODEL_UNREADABLE,
    PROMPT_TOO_LONG,
    STALLED,
    EngineError,
    Outcome,
    Phase,
    Text,
    Thinking,
    Trimmed,
)
from app.metrics.records import record_generation

log = logging.getLogger(__name__)
PING = ": ping\n\n"
# After a cancel, how long the stream waits for the job's last words and statistics. The
# engine checks for cancellation between tokens, so this is normally one token's time.
DRAIN_SECONDS = 2.0
# How often a stream asks whether its user may still read it (disabled, signed out everywhere).
ACCESS_CHECK_SECONDS = 2.0


def frame(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def model_unavailable_message(model: str) -> str:
    return _("The model “%(model)s” is not available. Pick another model.", model=model)


def engine_unreachable_message() -> str:
    return _("The model server cannot be reached right now. Try again in a moment, or pick another model.")


def error_message(error: EngineError, model: str, detailed: bool) -> str:
    """What the user reads when an answer fails; admins also see the technical detail."""
    messages = {
        MODEL_NOT_FOUND: model_unavailable_message(model),
        MODEL_UNREADABLE: _(
            "The model “%(model)s” could not be loaded. The administrator can see why on the models page.",
            model=model,
        ),
        ENGINE_UNAVAILABLE: _("The model engine is not installed on this server."),
        PROMPT_TOO_LONG: _(
            "This message is too long for the model's context window. Shorten it or start a new conversation."
        ),
        ENGINE_UNREACHABLE: engine_unreachable_message(),
        MODEL_TOO_LARGE: _(
            "The model “%(model)s” needs more memory than the server has free. Pick a smaller model, "
            "or ask the administrator to unload another one.",
            model=model,
        ),
        ENGINE_BUSY: _("The model server is busy with other requests. Try again in a minute."),
        LOAD_TIMEOUT: _(
            "The model “%(model)s” did not finish loading within %(seconds)s seconds. Try again later, "
            "or pick a smaller model.",
            model=model,
            seconds=error.values.get("seconds", "?"),
        ),
        FIRST_TOKEN_TIMEOUT: _(
            "The model “%(model)s” did not start answering within %(seconds)s seconds. Try again, "
            "perhaps with a shorter message.",
            model=model,
            seconds=error.values.get("seconds", "?"),
        ),
        STALLED: _(
            "The model stopped sending its answer (nothing for %(seconds)s seconds). What it wrote is "
            "kept; try again.",
            seconds=error.values.get("seconds", "?"),
        ),
    }
    text = messages.get(error.code, _("The model failed while answering. Please try again."))
    return f"{text} ({error.detail})" if detailed and error.detail else text


def session_ended_message() -> str:
    return _("This session has ended (signed out, or access withdrawn). What was written is kept.")


def trimmed_message(dropped: int) -> str:
    return ngettext(
        "The oldest message no longer fits in the model's context window and was left out.",
        "The %(num)d oldest messages no longer fit in the model's context window and were left out.",
        dropped,
    )


class AnswerStream:
    """Relays one job's events as SSE frames and keeps the stored answer up to date."""

    def __init__(
        self,
        job: Job,
        message_id: int,
        model: str,
        client_gone: Callable[[], bool],
        save_every: float,
        ping_every: float,
        detailed_errors: bool = False,
        measure: dict | None = None,
        allowed: Callable[[], bool] | None = None,
    ) -> None:
        """`measure`: what the answer's Generation record needs besides the stream's own
        figures (user_id, conversation_id, parameters, and `received_at`, the perf_counter()
        when the request was received: every time recorded counts from there); None: no record.
        `allowed`: whether the user may still read the answer; asked every few seconds, a no
        ends the stream (an account disabled or signed out everywhere loses its open streams)."""
        self.job = job
        self.message_id = message_id
        self.model = model
        self.client_gone = client_gone
        self.save_every = save_every
        self.ping_every = ping_every
        self.detailed_errors = detailed_errors
        self.parts: list[str] = []
        self.thinking: list[str] = []
        self.sent = 0  # frames sent: each carries its number as its SSE id
        self.measure = measure
        self.first_token_at: float | None = None  # perf_counter() of the first thinking or answer text
        self.first_answer_at: float | None = None
        self.outcome = Outcome.DISCONNECTED  # unless the stream ends otherwise
        self.error = ""
        self.stats: dict = {}
        self.dropped = 0
        self.end: Finished | Failed | None = None  # the job's last event, once read
        self.allowed = allowed

    def __iter__(self) -> Iterator[str]:
        last_sent = last_saved = last_checked = time.monotonic()
        saved_length = 0
        try:
            # Headers leave waitress only with the first non-empty chunk: send one at once. In
            # the `try`: a client gone before it is written still ends the job, in the `finally`.
            yield PING
            for event in self.job.events(tick=0.25):
                now = time.monotonic()
                if self.allowed is not None and now - last_checked >= ACCESS_CHECK_SECONDS:
                    last_checked = now
                    if not self.allowed():
                        self.outcome, self.error = Outcome.STOPPED, session_ended_message()
                        yield self.error_frame()
                        return
                if event is None:
                    if self.client_gone():
                        self.job.cancel(Outcome.DISCONNECTED)
                        return
                    if now - last_sent >= self.ping_every:
                        last_sent = now
                        yield PING
                    continue
                chunk = self._frame_for(event)
                if chunk:
                    last_sent = now
                    # Numbered (`id:`) so that a client can tell a lost or reordered event.
                    self.sent += 1
                    yield f"id: {self.sent}\n{chunk}"
                written = len(self.parts) + len(self.thinking)
                if written != saved_length and now - last_saved >= self.save_every:
                    self._save(Outcome.GENERATING)
                    saved_length, last_saved = written, now
        except Exception:
            # A failure of ours (the database, most likely) is an error, not a closed tab.
            self.outcome, self.error = Outcome.ERROR, _("The answer could not be saved. Please try again.")
            raise
        finally:
            if self.job_running():
                self.job.cancel(self.outcome)
                self._drain(DRAIN_SECONDS)
            if self.job_running():  # the engine did not answer the cancel in time
                self.outcome = self.job.cancel_outcome  # the first reason given: Stop, shutdown…
            ended_at = time.perf_counter()
            self._save_final()
            self._record(ended_at)

    def _save_final(self) -> None:
        """The last save, tried twice: a failed partial save may have left the session unusable."""
        for attempt in (1, 2):
            try:
                self._save(self.outcome, self.error, self.stats)
                return
            except SQLAlchemyError:
                db.session.rollback()
                if attempt == 2:
                    log.exception("answer %s could not be saved", self.message_id)

    def _record(self, ended_at: float) -> None:
        """The answer's measurements; a failure here loses the record, never the answer."""
        if self.measure is None:
            return
        received = self.measure["received_at"]

        def since(at: float | None) -> float | None:
            return at - received if at is not None else None

        try:
            record_generation(
                message_id=self.measure.get("message_id", self.message_id),
                user_id=self.measure["user_id"],
                conversation_id=self.measure["conversation_id"],
                model=self.model,
                parameters=self.measure["parameters"],
                outcome=self.outcome.value,
                stats=self.stats,
                first_token=since(self.first_token_at),
                first_answer=since(self.first_answer_at),
                total=ended_at - received,
            )
        except SQLAlchemyError:
            db.session.rollback()
            log.exception("the measurements of answer %s could not be saved", self.message_id)

    def _save(self, outcome: Outcome, error: str = "", stats: dict | None = None) -> None:
        save_answer(
            self.message_id, "".join(self.parts), outcome, error, stats, thinking="".join(self.thinking)
        )

    def job_running(self) -> bool:
        return self.end is None

    def _drain(self, timeout: float) -> None:
        """Collect what the cancelled job still produces: its last words and its statistics."""
        deadline = time.monotonic() + timeout
        for event in self.job.events(tick=0.05):
            if event is not None:
                self._frame_for(event)
            if not self.job_running() or time.monotonic() > deadline:
                return

    def _frame_for(self, event) -> str:
        if isinstance(event, Text | Thinking) and self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        if isinstance(event, Text):
            if self.first_answer_at is None:
                self.first_answer_at = time.perf_counter()
            self.parts.append(event.text)
            return frame("token", {"text": event.text})
        if isinstance(event, Thinking):
            self.thinking.append(event.text)
            return frame("thinking", {"text": event.text})
        if isinstance(event, Queued):
            return frame("status", {"phase": "queued", "position": event.position})
        if isinstance(event, Phase):
            return frame("status", {"phase": event.name})
        if isinstance(event, Trimmed):
            self.stats["dropped_messages"] = self.dropped = event.dropped_messages
            return frame(
                "notice", {"code": "context_trimmed", "message": trimmed_message(event.dropped_messages)}
            )
        if isinstance(event, Finished | Failed):
            self.end = event
        if isinstance(event, Finished):
            self.outcome = event.outcome
            # What the user was told about left-out turns stays with the answer.
            self.stats = {**event.stats.as_dict(), "dropped_messages": self.dropped}
            return frame(
                "done", {"message_id": self.message_id, "state": self.outcome.value, "stats": self.stats}
            )
        if isinstance(event, Failed):
            self.outcome = Outcome.ERROR
            self.error = error_message(event.error, self.model, self.detailed_errors)
            return self.error_frame()
        return ""

    def error_frame(self) -> str:
        """The last frame of a stream that failed or was cut (`self.error` says why)."""
        return frame("error", {"message_id": self.message_id, "message": self.error})


class UnsavedStream(AnswerStream):
    """The same stream for an answer no message keeps (a comparison, the API): nothing saved."""

    def _save(self, outcome: Outcome, error: str = "", stats: dict | None = None) -> None:
        pass
