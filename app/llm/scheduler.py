"""Who generates when: requests wait here, fairly, for their share of the machine.

Two decodes on the same cores ruin each other (on 2 cores, two 2-thread decodes lose over 90 %
of their speed), so this machine's cores are one budget, shared by every generation that runs
here: the embedded models, and an Ollama host on this machine. Each request claims what it
needs from a pool (`Claim`): so many cores from this machine's budget, or a seat on a remote
Ollama host (which takes as many requests at once as it is configured for); an embedded model
also answers one request at a time.

Waiting is fair between users: the next request to start is that of the user with the fewest
answers running, then the one served longest ago, then the oldest request. One user's ten
questions don't starve another's one. The queue is bounded: `reserve()` says no beyond it.

A model that several Ollama hosts have goes, answer by answer, to the host with the fewest
answers running or waiting (the first on a tie), among those that answer. The choice is made at
`submit()`, when the scheduler's own counts are exact, and the job then waits in that host's
pool as any other. A host that fails before the first token (refused, reset, a 5xx answer)
does not lose the answer: it moves to another host that has the model, waiting its turn there;
a failure once text has streamed stays an error (half an answer cannot be replayed).

Every generation runs in a worker thread of its own; the web layer reads its events from a
queue, so it can notice a closed tab and send keep-alives while the engine is busy.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from app.llm.catalogue import Catalogue
from app.llm.types import (
    CORES,
    GENERATION_FAILED,
    MODEL_NOT_FOUND,
    ChatMessage,
    Claim,
    EngineError,
    Final,
    GenerationOptions,
    GenerationStats,
    Outcome,
    Phase,
    Text,
    Thinking,
    Trimmed,
)
from app.metrics.sampler import Sampler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationRequest:
    key: int  # the answer's message id: how Stop finds the job
    user_id: int
    model_id: str
    messages: list[ChatMessage]
    options: GenerationOptions = field(default_factory=GenerationOptions)
    # A cold start (benchmarks): the model is unloaded first, once the job holds its turn, so
    # the measurement includes the load and no other answer loses its model mid-way.
    cold: bool = False
    # Measured alone (benchmarks): the job takes its whole pool, so nothing else runs on the
    # same cores (or the same remote host) while it does.
    alone: bool = False


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


Event = Queued | Phase | Trimmed | Thinking | Text | Finished | Failed


class Job:
    def __init__(self, request: GenerationRequest, seq: int, wake: Callable[[], None] = lambda: None) -> None:
        self.request = request
        self._wake = wake  # tells the scheduler, so a waiting job leaves the queue at once
        self.seq = seq  # arrival order
        self.claim = Claim()
        self.engine = None  # the engine (host) chosen for it; None: no engine has the model
        self.tried: set[str] = set()  # the engines it was sent to, so a retry goes elsewhere
        self.cancelled = threading.Event()
        self.cancel_outcome = Outcome.STOPPED
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.ended = threading.Event()
        self.queued_seconds = 0.0
        self.concurrent = 1  # generations running at once with this one, at most
        self._cancel_lock = threading.Lock()
        # perf_counter() when the engine gave its first text (thinking or answer), its first
        # answer text, and its end: a reader that comes later (one of several answers read in
        # turn) still times each answer as it was written.
        self.first_token_at: float | None = None
        self.first_answer_at: float | None = None
        self.ended_at: float | None = None

    def cancel(self, outcome: Outcome) -> None:
        """Ask the generation to stop; the first reason given is the one recorded."""
        with self._cancel_lock:  # Stop and a closed tab at the same instant: the first one counts
            if self.cancelled.is_set():
                return
            self.cancel_outcome = outcome
            self.cancelled.set()
        self._wake()

    def emit(self, event: Event) -> None:
        now = time.perf_counter()
        if isinstance(event, Text | Thinking) and self.first_token_at is None:
            self.first_token_at = now
        if isinstance(event, Text) and self.first_answer_at is None:
            self.first_answer_at = now
        if isinstance(event, Finished | Failed):
            self.ended_at = now
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
    def __init__(
        self, catalogue: Catalogue, cores: int = 1, pools: dict[str, int] | None = None, max_jobs: int = 0
    ):
        """`cores`: this machine's budget; `pools`: other pools' capacities (remote hosts);
        `max_jobs`: how many answers may wait or run at once (0: no bound)."""
        self.catalogue = catalogue
        self.capacity = {CORES: max(1, cores), **(pools or {})}
        self.max_jobs = max_jobs
        self._cond = threading.Condition()
        self._jobs: dict[int, Job] = {}  # waiting or running, by key
        self._waiting: list[Job] = []
        self._in_use: Counter[str] = Counter()  # per pool
        self._assigned: Counter[str] = Counter()  # answers waiting or running, per engine (host)
        self._busy_models: set[str] = set()
        self._running: set[Job] = set()
        self._running_per_user: Counter[int] = Counter()
        self._served_at: dict[int, float] = {}  # when each user's last answer started
        self._reserved = 0
        self._closed = False
        self._seq = itertools.count()
        self._private_keys = itertools.count(-1, -1)

    # -- the web layer's side ----------------------------------------------------------------
    def reserve(self) -> bool:
        """Hold a place for an answer about to be submitted; False when the queue is full or
        the scheduler is closed."""
        with self._cond:
            if self._closed or (self.max_jobs and len(self._jobs) + self._reserved >= self.max_jobs):
                return False
            self._reserved += 1
            return True

    def release(self) -> None:
        """Give back a place reserved but not used."""
        with self._cond:
            self._reserved = max(0, self._reserved - 1)

    def submit(self, request: GenerationRequest, reserved: bool = False) -> Job:
        job = Job(request, next(self._seq), wake=self._wake)
        serving = self.catalogue.candidates(request.model_id)  # outside the lock: it may ask hosts
        with self._cond:
            if serving:
                self._route(job, serving)
            if reserved:
                self._reserved = max(0, self._reserved - 1)
            self._jobs[request.key] = job
            self._waiting.append(job)
            if self._closed:  # shutting down: it ends at once, as interrupted
                job.cancel(Outcome.INTERRUPTED)
            self._cond.notify_all()  # a fairer job may have come: positions change
        try:
            threading.Thread(target=self._run, args=(job,), name=f"gen-{request.key}", daemon=True).start()
        except BaseException:
            with self._cond:
                self._waiting.remove(job)
                self._jobs.pop(request.key, None)
                if job.engine is not None:
                    self._assigned[job.engine.name] -= 1
                self._reserved += reserved  # the caller gives its place back
            raise
        return job

    @property
    def closed(self) -> bool:
        return self._closed

    def private_key(self) -> int:
        """A key for a job that answers no stored message (a benchmark, a comparison): negative,
        so it never meets a message id."""
        return next(self._private_keys)

    def together(self, requests: list[tuple[str, GenerationOptions]]) -> bool:
        """Whether answers with these models and options could all run at the same time here,
        the machine otherwise idle (what the compare page tells its user)."""
        wanted: Counter[str] = Counter()
        models: list[str] = []
        for model_id, options in requests:
            found = self.catalogue.find(model_id)
            if found is None:
                continue
            claim = found[0].claim(model_id, options)
            wanted[claim.pool] += self._cost(claim)
            if claim.model_key:
                models.append(claim.model_key)
        roomy = all(cost <= self.capacity.get(pool, 1) for pool, cost in wanted.items())
        return roomy and len(models) == len(set(models))

    def close(self) -> None:
        """Take no more answers (shutdown): `reserve()` says no, a late `submit()` ends at once."""
        with self._cond:
            self._closed = True

    def cancel(self, key: int, outcome: Outcome) -> bool:
        """Cancel the job answering message `key`; False when none is running."""
        with self._cond:
            job = self._jobs.get(key)
        if job is None:
            return False
        job.cancel(outcome)
        return True

    def cancel_all(self, outcome: Outcome) -> int:
        """Cancel every job, waiting or running (shutdown); returns how many there were."""
        with self._cond:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel(outcome)
        return len(jobs)

    def occupancy(self) -> dict[str, tuple[int, int]]:
        """Answers (running, waiting) per engine name, for the admin; engines idle are left out."""
        with self._cond:
            running = Counter(job.engine.name for job in self._running)
            waiting = Counter(job.engine.name for job in self._waiting if job.engine is not None)
        return {name: (running[name], waiting[name]) for name in running | waiting}

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def is_active(self, key: int) -> bool:
        with self._cond:
            return key in self._jobs

    def active(self) -> int:
        """Generations waiting or running, and places reserved for those about to be."""
        with self._cond:
            return len(self._jobs) + self._reserved

    # -- which host ---------------------------------------------------------------------------
    def _route(self, job: Job, serving: list) -> bool:
        """Send the job to the least busy engine that may serve its model (fewest answers
        running or waiting there; the first on a tie), skipping those it was already sent to
        and hosts that do not answer. None answers: the first, whose failure says why. False
        when a retry finds nowhere else to go. The caller holds the lock."""
        request = job.request
        usable = [found for found in serving if found[0].name not in job.tried and found[1].usable]
        if not usable:
            if job.tried:
                return False
            usable = serving[:1]
        engine = min(usable, key=lambda found: self._assigned[found[0].name])[0]
        claim = engine.claim(request.model_id, request.options)
        if request.alone:
            claim = replace(claim, cost=self.capacity.get(claim.pool, 1))
        if job.engine is not None:
            self._assigned[job.engine.name] -= 1
        job.engine, job.claim = engine, claim
        job.tried.add(engine.name)
        self._assigned[engine.name] += 1
        return True

    def _retry_elsewhere(self, job: Job, failure: EngineError) -> bool:
        """After its host failed before the first token: back in the queue, for another host
        that has the model. False when there is none (or the user stopped meanwhile)."""
        if not failure.retry_elsewhere or job.cancelled.is_set():
            return False
        serving = self.catalogue.candidates(job.request.model_id)  # the failed host is now down
        with self._cond:
            failed = job.engine.name
            if not self._route(job, serving):
                return False
            self._waiting.append(job)
            self._cond.notify_all()
        log.info("answer %s: %s failed (%s), sent to %s", job.request.key, failed, failure, job.engine.name)
        return True

    # -- who goes next -----------------------------------------------------------------------
    def _order(self) -> list[Job]:
        """The waiting jobs, fairest first (the caller holds the lock)."""
        return sorted(
            self._waiting,
            key=lambda j: (
                self._running_per_user[j.request.user_id],
                self._served_at.get(j.request.user_id, 0.0),
                j.seq,
            ),
        )

    def _cost(self, claim: Claim) -> int:
        return min(claim.cost, self.capacity.get(claim.pool, 1))  # a claim larger than its pool runs alone

    def _fits(self, claim: Claim) -> bool:
        room = self.capacity.get(claim.pool, 1) - self._in_use[claim.pool]
        return self._cost(claim) <= room and not (claim.model_key and claim.model_key in self._busy_models)

    def _position(self, job: Job) -> int | None:
        """None when the job may start now; else its place among those waiting for the same
        pool (1 = next). A job never overtakes a fairer one that waits for the same pool; one
        that waits only for its busy model does not hold the others up."""
        ahead = 0
        for other in self._order():
            if other is job:
                break
            if other.claim.pool == job.claim.pool and other.claim.model_key not in self._busy_models:
                ahead += 1
        if ahead == 0 and self._fits(job.claim):
            return None
        return ahead + 1

    # -- the worker --------------------------------------------------------------------------
    def _run(self, job: Job) -> None:
        try:
            if job.engine is None:
                job.emit(Failed(EngineError(MODEL_NOT_FOUND, job.request.model_id)))
                return
            while True:
                if not self._wait_for_turn(job):
                    job.emit(Finished(job.cancel_outcome, GenerationStats(finish_reason="cancelled")))
                    return
                try:
                    failure = self._generate(job, job.engine)
                finally:
                    self._leave(job)
                if failure is None:
                    return
                if not self._retry_elsewhere(job, failure):
                    log.warning("generation %s failed: %s", job.request.key, failure)
                    job.emit(Failed(failure))
                    return
        finally:
            with self._cond:
                self._jobs.pop(job.request.key, None)
                if job in self._waiting:  # it failed before its turn came
                    self._waiting.remove(job)
                if job.engine is not None:
                    self._assigned[job.engine.name] -= 1
                self._cond.notify_all()
            job.ended.set()

    def _wait_for_turn(self, job: Job) -> bool:
        told = 0
        started = time.monotonic()
        with self._cond:
            while True:
                if job.cancelled.is_set():
                    self._waiting.remove(job)
                    self._cond.notify_all()
                    return False
                position = self._position(job)
                if position is None:
                    self._take(job)
                    job.queued_seconds += time.monotonic() - started  # a retry waits again
                    return True
                if position != told:
                    job.emit(Queued(position))
                    told = position
                self._cond.wait(timeout=1.0)

    def _take(self, job: Job) -> None:
        claim, user = job.claim, job.request.user_id
        self._waiting.remove(job)
        self._in_use[claim.pool] += self._cost(claim)
        if claim.model_key:
            self._busy_models.add(claim.model_key)
        self._running_per_user[user] += 1
        self._served_at[user] = time.monotonic()
        self._running.add(job)
        for running in self._running:  # measurements made side by side are told apart
            running.concurrent = max(running.concurrent, len(self._running))
        self._cond.notify_all()  # positions changed

    def _leave(self, job: Job) -> None:
        claim, user = job.claim, job.request.user_id
        with self._cond:
            self._in_use[claim.pool] -= self._cost(claim)
            self._busy_models.discard(claim.model_key)
            self._running_per_user[user] -= 1
            self._running.discard(job)
            self._cond.notify_all()

    def _generate(self, job: Job, engine) -> EngineError | None:
        """Stream the answer; returns the engine's failure when another host may answer
        instead (nothing streamed yet), after emitting nothing about it."""
        request = job.request
        streamed = False
        try:
            final = None
            if request.cold:
                engine.unload(request.model_id)
            # CPU and memory of the process(es) doing the work, sampled while it runs.
            with Sampler(engine.processes) as sampler:
                chunks = engine.stream_chat(
                    request.model_id, request.messages, request.options, job.cancelled
                )
                for chunk in chunks:
                    if isinstance(chunk, Final):
                        final = chunk
                        break
                    job.emit(chunk)
                    streamed = streamed or isinstance(chunk, Text | Thinking)
                    if job.cancelled.is_set() and not isinstance(chunk, Text | Thinking):
                        # Cancelled while loading or before the first token: no need to go on.
                        chunks.close()
                        break
            if final is None and not job.cancelled.is_set():
                raise EngineError(GENERATION_FAILED, "the engine ended without its statistics")
            stats = final.stats if final else GenerationStats(finish_reason="cancelled")
            stats.queue_seconds = job.queued_seconds
            stats.concurrent = job.concurrent
            stats.resources = sampler.usage.as_dict()
            outcome = job.cancel_outcome if job.cancelled.is_set() else Outcome.COMPLETE
            job.emit(Finished(outcome, stats))
        except EngineError as exc:
            if exc.retry_elsewhere and not streamed and not job.cancelled.is_set():
                return exc  # the caller retries it on another host, or reports it
            log.warning("generation %s failed: %s", request.key, exc)
            job.emit(Failed(exc))
        except Exception as exc:  # an engine bug must not kill the worker silently
            log.exception("generation %s crashed", request.key)
            job.emit(Failed(EngineError(GENERATION_FAILED, repr(exc))))
        return None
