"""An answer being written: a job of the server's, not of the request that asked for it.

The engine's events become numbered answer events (the stream vocabulary: status, sources, notice,
thinking, token, done, error), kept in order for as long as the answer lives and a while after,
so that any number of subscribers — the page that asked, the same page reloaded, another tab,
a phone — can read them from any point: what was already written, then the rest, nothing lost
or doubled. Only a cancel (Stop, sign-out, the admin, shutdown) ends it early, never a reader
leaving; except for an answer that nobody could come back to (`watched_only`: a comparison, an
API call), which ends as `disconnected` when its one reader goes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from app.answers.messages import Wording
from app.llm.scheduler import Failed, Finished, Queued
from app.llm.types import EngineError, Outcome, Phase, Text, Thinking, Trimmed

log = logging.getLogger(__name__)

# The figures of an answer its reader gets (the page, an export, the API): how long it took and
# how much it wrote. Not the engine's name (an Ollama host's address: it takes no password),
# its own timings, threads, context or the CPU and memory it used: those are the admin's, in
# the measurements (app/metrics). An allow-list, so that a figure added later stays inside.
PUBLIC_STATS = (
    "prompt_tokens",
    "completion_tokens",
    "thinking_tokens",
    "cached_tokens",
    "load_seconds",
    "queue_seconds",
    "first_token_seconds",
    "first_answer_seconds",
    "total_seconds",
    "tokens_per_second",
    "finish_reason",
    "dropped_messages",
)


def public_stats(stats: dict | None) -> dict:
    """What a reader sees of an answer's figures (see PUBLIC_STATS)."""
    return {name: stats[name] for name in PUBLIC_STATS if name in (stats or {})}


@dataclass(frozen=True)
class AnswerEvent:
    seq: int  # 1, 2, 3…: the SSE `id:`, from which a subscriber resumes
    name: str  # status | sources | notice | thinking | token | done | error
    data: dict

    @property
    def final(self) -> bool:
        return self.name in ("done", "error")


class LiveAnswer:
    def __init__(
        self,
        answer_id: str,
        user_id: int,
        model: str,
        received_at: float,
        *,
        message_id: int | None = None,
        conversation_id: int | None = None,
        watched_only: bool = False,
        measure: dict | None = None,
        detailed_errors: bool = False,
        allowed: Callable[[], bool] | None = None,
        words: Wording | None = None,
    ) -> None:
        """`measure`: what the answer's Generation record needs (parameters…); None: not
        recorded. `allowed`: whether its author may still have it written (an account
        disabled, an API key revoked: no). `words`: what its author reads, in their language."""
        self.id = answer_id
        self.user_id = user_id
        self.model = model
        self.received_at = received_at  # perf_counter(): every time recorded counts from here
        self.message_id = message_id
        self.conversation_id = conversation_id
        self.watched_only = watched_only
        self.measure = measure
        self.detailed_errors = detailed_errors
        self.allowed = allowed
        self.words = words or _PlainWords()
        self.events: list[AnswerEvent] = []
        self.parts: list[str] = []
        self.thinking: list[str] = []
        self.outcome = Outcome.GENERATING
        self.error = ""
        self.stats: dict = {}
        self.dropped = 0
        self.first_token_at: float | None = None
        self.first_answer_at: float | None = None
        self.ended_at: float | None = None  # perf_counter()
        self.ended = threading.Event()
        self.started_at = time.time()  # for the admin: how long it has been asked
        self.finished_monotonic = 0.0
        self.subscribers = 0
        self.unwatched_since = time.monotonic()
        self._cond = threading.Condition()
        # Saving: the final save is the last; partial ones never come after it.
        self.save_lock = threading.Lock()
        self.ending = False
        self.saved_length = 0  # characters of text and thinking in the database
        self.unsaved_end = False  # its ending could not be stored yet: the keeper tries again
        self.cancel_message = ""  # what the reader is told when a cancel ends it (a sign-out)
        self._cancel_job: Callable[[Outcome], bool] = lambda outcome: False
        self._cancelled: Outcome | None = None
        self.on_end: Callable[[LiveAnswer], str] = lambda live: ""
        # Its author's day of tokens (app.accounts.quotas), spent as it writes: once the day's
        # limit is reached the answer stops, what it wrote kept; what the engine still sends
        # before it stops is left out.
        self.charge = None

    # -- the scheduler's side ----------------------------------------------------------------
    def attach(self, cancel_job: Callable[[Outcome], bool]) -> None:
        """The job is submitted: cancels reach it from now on (one asked before is passed on)."""
        self._cancel_job = cancel_job
        if self._cancelled is not None:
            cancel_job(self._cancelled)

    def receive(self, event) -> None:
        """The job's events (the scheduler's worker thread)."""
        now = time.perf_counter()
        if isinstance(event, Text | Thinking) and self.charge is not None:
            if self.charge.cut:
                return
            left = self.charge.spend(1)
            if left is not None and left <= 0:
                self.charge.cut = True
                self.cancel(Outcome.STOPPED, self.charge.reached_message)
                if left < 0:  # another answer of theirs used the last token meanwhile
                    return
        if isinstance(event, Text):
            self.first_token_at = self.first_token_at or now
            self.first_answer_at = self.first_answer_at or now
            self.parts.append(event.text)
            self._add("token", {"text": event.text})
        elif isinstance(event, Thinking):
            self.first_token_at = self.first_token_at or now
            self.thinking.append(event.text)
            self._add("thinking", {"text": event.text})
        elif isinstance(event, Queued):
            self._add("status", {"phase": "queued", "position": event.position})
        elif isinstance(event, Phase):
            self._add("status", {"phase": event.name})
        elif isinstance(event, Trimmed):
            self.dropped = event.dropped_messages
            notice = self.words.trimmed(event.dropped_messages)
            self._add("notice", {"code": "context_trimmed", "message": notice})
        elif isinstance(event, Finished | Failed):
            self._finish(event, now)

    def _finish(self, event: Finished | Failed, now: float) -> None:
        self.ended_at = now
        if isinstance(event, Finished):
            # Cut at its author's quota: stopped, even when the engine had finished meanwhile.
            cut = self.charge is not None and self.charge.cut
            self.outcome = Outcome.STOPPED if cut else event.outcome
            # What the user was told about left-out turns stays with the answer.
            self.stats = {**event.stats.as_dict(), "dropped_messages": self.dropped}
            if self.cancel_message:
                self.error = self.cancel_message
        else:
            self.outcome = Outcome.ERROR
            self.error = self.words.error(event.error)
        failure = self.on_end(self)  # saved and measured: a failure to save is told instead
        if failure:
            self.error = failure
        if self.error and (self.outcome == Outcome.ERROR or failure or self.cancel_message):
            self._add(
                "error", {"message_id": self.message_id, "message": self.error, "state": self.outcome.value}
            )
        else:
            self._add(
                "done",
                {
                    "message_id": self.message_id,
                    "state": self.outcome.value,
                    "stats": public_stats(self.stats),
                },
            )
        self.finished_monotonic = time.monotonic()
        self.ended.set()
        with self._cond:
            self._cond.notify_all()

    def _add(self, name: str, data: dict) -> None:
        with self._cond:
            self.events.append(AnswerEvent(len(self.events) + 1, name, data))
            self._cond.notify_all()

    def documents_waited(self, ready: int, total: int) -> None:
        """The question waits for its documents' indexing: `ready` of `total` are."""
        self._add("status", {"phase": "documents", "ready": ready, "total": total})

    def cite(self, sources: dict) -> None:
        """The passages the answer is written from (before its first word)."""
        self._add("sources", sources)

    @property
    def cancel_asked(self) -> bool:
        return self._cancelled is not None

    # -- the readers' side -------------------------------------------------------------------
    def cancel(self, outcome: Outcome, message: str = "") -> bool:
        """End the answer early; `message`: what its readers are told (else it ends as done
        with that state). False when it had ended or been cancelled already."""
        if self.ended.is_set() or self._cancelled is not None:
            return False
        self._cancelled = outcome
        self.cancel_message = message
        self._cancel_job(outcome)
        return True

    def after(self, seq: int, timeout: float) -> list[AnswerEvent]:
        """The events after `seq`, waiting up to `timeout` for one when there are none yet (a
        `seq` beyond the last event counts as the last)."""
        with self._cond:
            seq = min(max(seq, 0), len(self.events))
            if len(self.events) == seq and not self.ended.is_set():
                self._cond.wait(timeout)
            return self.events[seq:]

    def follow(self, tick: float = 0.25) -> Iterator[AnswerEvent]:
        """Every event from the first, as they come, until the end (in-process readers)."""
        seq = 0
        while True:
            for event in self.after(seq, tick):
                seq = event.seq
                yield event
                if event.final:
                    return

    def watch(self) -> None:
        with self._cond:
            self.subscribers += 1

    def unwatch(self) -> None:
        with self._cond:
            self.subscribers -= 1
            if self.subscribers == 0:
                self.unwatched_since = time.monotonic()

    def progress(self) -> dict:
        """Where it stands, for the admin: its phase (queued, loading, prompt, thinking,
        answering), its place when queued, the tokens written so far."""
        with self._cond:
            status = next((e.data for e in reversed(self.events) if e.name == "status"), {"phase": "queued"})
            tokens = len(self.parts) + len(self.thinking)
        return {"phase": status["phase"], "position": status.get("position", 0), "tokens": tokens}

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def thinking_text(self) -> str:
        return "".join(self.thinking)

    def timings(self) -> dict:
        """Seconds from the request's arrival: first token (thinking or answer), first answer
        token, the end."""

        def since(at: float | None) -> float | None:
            return round(at - self.received_at, 3) if at is not None else None

        return {
            "first_token_seconds": since(self.first_token_at),
            "first_answer_seconds": since(self.first_answer_at),
            "total_seconds": since(self.ended_at),
        }


class _PlainWords:
    """Untranslated words, for answers made outside the app (the scheduler's own tests)."""

    def error(self, error: EngineError) -> str:
        return str(error)

    def trimmed(self, dropped: int) -> str:
        return f"{dropped} messages left out"

    def not_saved(self, kept: int) -> str:
        return f"not saved ({kept} characters stored)"

    def session_ended(self) -> str:
        return "session ended"

    def unwatched(self, minutes: int) -> str:
        return f"nobody followed it for {minutes} minutes"

    def stopped_by_admin(self) -> str:
        return "stopped by the administrator"
