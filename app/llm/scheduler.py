"""Who generates when: requests wait here for a share of the machine's cores.

Two decodes on the same cores ruin each other (on 2 cores, two 2-thread decodes lose over 90 %
of their speed), so the cores are one budget: `slots` generations run at once, the rest wait
in arrival order and are told their position. Every generation runs in a worker thread of its
own; the web layer reads its events from a queue, so it can notice a closed tab and send
keep-alives while the engine is busy.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from app.llm.catalogue import Catalogue
from app.llm.types import (
    GENERATION_FAILED,
    MODEL_NOT_FOUND,
    ChatMessage,
    EngineError,
    Final,
    GenerationOptions,
    GenerationStats,
    Outcome,
    Phase,
    Text,
    Trimmed,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationRequest:
    key: int  # the answer's message id: how Stop finds the job
    user_id: int
    model_id: str
    messages: list[ChatMessage]
    options: GenerationOptions = field(default_factory=GenerationOptions)


@dataclass(frozen=True)
class Queued:
    position: int  # 1 = next


@dataclass(frozen=True)
class Finished:
    outcome: Outcome
    stats: GenerationStats


@dataclass(frozen=True)
class Failed:
    error: EngineError


Event = Queued | Phase | Trimmed | Text | Finished | Failed


class Job:
    def __init__(self, request: GenerationRequest) -> None:
        self.request = request
        self.cancelled = threading.Event()
        self.cancel_outcome = Outcome.STOPPED
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.ended = threading.Event()

    def cancel(self, outcome: Outcome) -> None:
        """Ask the generation to stop; the first reason given is the one recorded."""
        if not self.cancelled.is_set():
            self.cancel_outcome = outcome
            self.cancelled.set()

    def emit(self, event: Event) -> None:
        self._events.put(event)

    def events(self, tick: float = 0.5) -> Iterator[Event | None]:
        """The job's events until it ends; None every `tick` seconds while nothing happens."""
        while True:
            try:
                event = self._events.get(timeout=tick)
            except queue.Empty:
                yield None
                continue
            yield event
            if isinstance(event, Finished | Failed):
                return


class Scheduler:
    def __init__(self, catalogue: Catalogue, slots: int = 1) -> None:
        self.catalogue = catalogue
        self.slots = max(1, slots)
        self._cond = threading.Condition()
        self._waiting: list[Job] = []
        self._running = 0
        self._jobs: dict[int, Job] = {}

    def submit(self, request: GenerationRequest) -> Job:
        job = Job(request)
        with self._cond:
            self._jobs[request.key] = job
            self._waiting.append(job)
        threading.Thread(target=self._run, args=(job,), name=f"gen-{request.key}", daemon=True).start()
        return job

    def cancel(self, key: int, outcome: Outcome) -> bool:
        """Cancel the job answering message `key`; False when none is running."""
        with self._cond:
            job = self._jobs.get(key)
        if job is None:
            return False
        job.cancel(outcome)
        with self._cond:
            self._cond.notify_all()
        return True

    def cancel_all(self, outcome: Outcome) -> int:
        """Cancel every job, waiting or running (shutdown); returns how many there were."""
        with self._cond:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel(outcome)
        with self._cond:
            self._cond.notify_all()
        return len(jobs)

    def is_active(self, key: int) -> bool:
        with self._cond:
            return key in self._jobs

    def active(self) -> int:
        """Generations waiting or running."""
        with self._cond:
            return len(self._jobs)

    # -- the worker --------------------------------------------------------------------------
    def _run(self, job: Job) -> None:
        try:
            if self._wait_for_turn(job):
                try:
                    self._generate(job)
                finally:
                    with self._cond:
                        self._running -= 1
                        self._cond.notify_all()
            else:
                job.emit(Finished(job.cancel_outcome, GenerationStats(finish_reason="cancelled")))
        finally:
            with self._cond:
                self._jobs.pop(job.request.key, None)
            job.ended.set()

    def _wait_for_turn(self, job: Job) -> bool:
        told = 0
        with self._cond:
            while True:
                if job.cancelled.is_set():
                    self._waiting.remove(job)
                    self._cond.notify_all()
                    return False
                position = self._waiting.index(job) + 1
                if position == 1 and self._running < self.slots:
                    self._waiting.pop(0)
                    self._running += 1
                    self._cond.notify_all()
                    return True
                if position != told:
                    job.emit(Queued(position))
                    told = position
                self._cond.wait(timeout=1.0)

    def _generate(self, job: Job) -> None:
        request = job.request
        found = self.catalogue.find(request.model_id)
        try:
            if found is None:
                raise EngineError(MODEL_NOT_FOUND, request.model_id)
            engine, _ = found
            chunks = engine.stream_chat(request.model_id, request.messages, request.options, job.cancelled)
            for chunk in chunks:
                if isinstance(chunk, Final):
                    outcome = Outcome.COMPLETE
                    if job.cancelled.is_set():
                        outcome = job.cancel_outcome
                    job.emit(Finished(outcome, chunk.stats))
                    return
                job.emit(chunk)
                if job.cancelled.is_set() and not isinstance(chunk, Text):
                    # Cancelled while loading or before the first token: no need to go on.
                    chunks.close()
                    job.emit(Finished(job.cancel_outcome, GenerationStats(finish_reason="cancelled")))
                    return
            raise EngineError(GENERATION_FAILED, "the engine ended without its statistics")
        except EngineError as exc:
            log.warning("generation %s failed: %s", request.key, exc)
            job.emit(Failed(exc))
        except Exception as exc:  # an engine bug must not kill the worker silently
            log.exception("generation %s crashed", request.key)
            job.emit(Failed(EngineError(GENERATION_FAILED, repr(exc))))
