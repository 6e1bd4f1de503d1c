"""Every answer being written, and a while after: found by its id, its conversation, its author.

A keeper thread looks after them: saves what each has written every PARTIAL_SAVE_SECONDS,
ends those whose author may no longer have them (an account disabled) and, when the admin set
UNWATCHED_CANCEL_MINUTES, those nobody has followed that long; tries again to store an ending
the storage refused; and forgets finished answers after FINISHED_ANSWER_SECONDS.

It also counts the open event streams, each of which holds a server thread: a person's
oldest stream beyond MAX_STREAMS_PER_USER is closed (its page may follow the answer again),
and beyond MAX_STREAMS in all a new one is refused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from app.answers import saving
from app.answers.live import LiveAnswer
from app.llm.types import Outcome

log = logging.getLogger(__name__)
ACCESS_CHECK_SECONDS = 2.0
SETTLE_RETRY_SECONDS = 5.0


class TooManyStreams(Exception):
    """MAX_STREAMS event streams are open."""


class StreamTicket:
    """One open event stream (or a request waiting for whole answers); `closed` is set when a
    newer one of the same person takes its place. Only a `resumable` one is closed so: a page
    following a conversation's answer can follow it again, a comparison or an API call cannot."""

    def __init__(self, user_id: int, resumable: bool = True) -> None:
        self.user_id = user_id
        self.resumable = resumable
        self.closed = threading.Event()


class Answers:
    def __init__(self, app: Flask) -> None:
        self.app = app
        config = app.config
        self.save_every = config["PARTIAL_SAVE_SECONDS"]
        self.keep_finished = config["FINISHED_ANSWER_SECONDS"]
        self.unwatched_minutes = config["UNWATCHED_CANCEL_MINUTES"]
        self.max_streams = config["MAX_STREAMS"]
        self.max_streams_per_user = config["MAX_STREAMS_PER_USER"]
        self._answers: dict[str, LiveAnswer] = {}
        self._starting: set[str] = set()  # ids whose message is stored, their job not yet started
        self._streams: dict[int, list[StreamTicket]] = {}
        self._lock = threading.Lock()
        self._keeper: threading.Thread | None = None
        self._wake = threading.Event()

    # -- answers -----------------------------------------------------------------------------
    def add(self, live: LiveAnswer) -> None:
        live.on_end = self._ended
        self._forget_finished(time.monotonic())
        with self._lock:
            self._answers[live.id] = live
            if self._keeper is None:
                self._keeper = threading.Thread(target=self._keep, name="answers-keeper", daemon=True)
                self._keeper.start()

    def discard(self, live: LiveAnswer) -> None:
        """An answer that could not be started."""
        with self._lock:
            self._answers.pop(live.id, None)

    def get(self, answer_id: str | None) -> LiveAnswer | None:
        with self._lock:
            return self._answers.get(answer_id or "")

    @contextmanager
    def starting(self, answer_id: str) -> Iterator[None]:
        """While an answer's message is stored and its job started: it counts as being written
        already (another request must not take its message for one left by a dead process)."""
        with self._lock:
            self._starting.add(answer_id)
        try:
            yield
        finally:
            with self._lock:
                self._starting.discard(answer_id)

    def is_live(self, answer_id: str | None) -> bool:
        """Being written (or about to be: see `starting`), not ended."""
        with self._lock:
            if answer_id in self._starting:
                return True
        live = self.get(answer_id)
        return live is not None and not live.ended.is_set()

    def live(self) -> list[LiveAnswer]:
        """The answers not ended."""
        with self._lock:
            return [a for a in self._answers.values() if not a.ended.is_set()]

    def answering(self, conversation_ids) -> set[int]:
        """Those of these conversations that have an answer being written."""
        wanted = set(conversation_ids)
        return {a.conversation_id for a in self.live() if a.conversation_id in wanted}

    def of_user(self, user_id: int) -> list[LiveAnswer]:
        return [a for a in self.live() if a.user_id == user_id]

    def end_sessions_of(self, user_id: int) -> int:
        """End every answer of a person whose session ended (signed out, disabled, password
        reset), telling them why in their own language; how many there were."""
        answers = self.of_user(user_id)
        for live in answers:
            live.cancel(Outcome.STOPPED, live.words.session_ended())
        return len(answers)

    def cancel_conversation(self, conversation_id: int, wait: float = 3.0) -> None:
        """End the conversation's answer and wait (a little) for its last save: the conversation
        is about to be deleted."""
        for live in self.live():
            if live.conversation_id == conversation_id:
                live.cancel(Outcome.STOPPED)
                live.ended.wait(wait)

    def cancel_all(self, outcome: Outcome) -> int:
        answers = self.live()
        for live in answers:
            live.cancel(outcome)
        return len(answers)

    def unsaved(self) -> int:
        """Answers whose ending is not stored yet (shutdown waits for none)."""
        with self._lock:
            return sum(1 for a in self._answers.values() if not a.ended.is_set() or a.unsaved_end)

    def _ended(self, live: LiveAnswer) -> str:
        """An answer ended: store it and its measurements; what to tell its reader when the
        storage failed, else ""."""
        with self.app.app_context():
            saved = saving.save_final(live)
            saving.record(live, saved)
            saving.settle_quota(live)
        if saved is None:
            self._wake.set()
            return live.words.not_saved(live.saved_length)
        return ""

    # -- streams -----------------------------------------------------------------------------
    def open_stream(self, user_id: int, settled: bool = True, resumable: bool = True) -> StreamTicket:
        """A place for one more event stream. Raises TooManyStreams when every place of the
        server is taken (a person at their share frees one of theirs: they can always open one).
        `settled`: the person's oldest streams beyond their share close now; otherwise only once
        `settle()` says the stream is really used (a request refused must close nobody's)."""
        ticket = StreamTicket(user_id, resumable)
        with self._lock:
            mine = self._streams.setdefault(user_id, [])
            at_share = (
                self.max_streams_per_user and sum(t.resumable for t in mine) >= self.max_streams_per_user
            )
            if (
                self.max_streams
                and not at_share
                and sum(map(len, self._streams.values())) >= self.max_streams
            ):
                if not mine:
                    self._streams.pop(user_id, None)
                raise TooManyStreams
            mine.append(ticket)
        if settled:
            self.settle(ticket)
        return ticket

    def settle(self, ticket: StreamTicket) -> None:
        """The stream is used: the person's oldest resumable ones beyond their share close."""
        with self._lock:
            mine = self._streams.get(ticket.user_id, [])
            older = [t for t in mine if t is not ticket and t.resumable]
            while self.max_streams_per_user and older and len(older) + 1 > self.max_streams_per_user:
                oldest = older.pop(0)
                mine.remove(oldest)
                oldest.closed.set()

    def close_stream(self, ticket: StreamTicket) -> None:
        with self._lock:
            mine = self._streams.get(ticket.user_id, [])
            if ticket in mine:
                mine.remove(ticket)
            if not mine:
                self._streams.pop(ticket.user_id, None)

    def open_streams(self) -> int:
        with self._lock:
            return sum(map(len, self._streams.values()))

    # -- the keeper --------------------------------------------------------------------------
    def _keep(self) -> None:
        """While there are answers to look after; `add()` starts it again."""
        last_check = last_settle = 0.0
        while True:
            self._wake.wait(min(self.save_every, 1.0))
            self._wake.clear()
            with self._lock:
                if not any(not a.ended.is_set() or a.unsaved_end for a in self._answers.values()):
                    self._keeper = None
                    return
            now = time.monotonic()
            try:
                with self.app.app_context():
                    for live in self.live():
                        saving.save_partial(live)
                    if now - last_check >= ACCESS_CHECK_SECONDS:
                        last_check = now
                        self._end_forbidden_and_unwatched(now)
                    if now - last_settle >= SETTLE_RETRY_SECONDS:
                        last_settle = now
                        self._settle()
                self._forget_finished(now)
            except Exception:  # the keeper must outlive any one failure
                log.exception("the answers' keeper failed a round")

    def _end_forbidden_and_unwatched(self, now: float) -> None:
        verdicts: dict[int, bool] = {}  # one check per person
        for live in self.live():
            if live.allowed is not None:
                if live.user_id not in verdicts:
                    verdicts[live.user_id] = live.allowed()
                if not verdicts[live.user_id]:
                    live.cancel(Outcome.STOPPED, live.words.session_ended())
                    continue
            unwatched = now - live.unwatched_since
            if self.unwatched_minutes and not live.subscribers and unwatched >= self.unwatched_minutes * 60:
                log.info(
                    "answer %s: nobody followed it for %d minutes, cancelled", live.id, self.unwatched_minutes
                )
                live.cancel(Outcome.DISCONNECTED, live.words.unwatched(self.unwatched_minutes))

    def _settle(self) -> None:
        with self._lock:
            unsaved = [a for a in self._answers.values() if a.unsaved_end]
        for live in unsaved:
            if saving.save_final(live, pauses=()) is not None:
                log.info("answer %s: its ending is stored at last", live.id)

    def _forget_finished(self, now: float) -> None:
        with self._lock:
            for answer_id, live in list(self._answers.items()):
                if (
                    live.ended.is_set()
                    and not live.unsaved_end
                    and now - live.finished_monotonic > self.keep_finished
                ):
                    del self._answers[answer_id]
