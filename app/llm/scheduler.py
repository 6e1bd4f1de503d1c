"""Who generates when: answers wait here, fairly, for a seat in an engine.

An engine's seats are the answers it writes together in one batch: a llama-server's slots, an
Ollama host's OLLAMA_NUM_PARALLEL, one for a model in this process. Several answers in one
batch cost the cores little more than one; two *separate* decodes on the same cores ruin each
other (on 2 cores, two 2-thread decodes lose over 90 % of their speed). So the engines on this
machine (`Claim.local`) decode one at a time: while one model's answers are being written,
another model's wait, and once one of them is the fairest waiting, the running model takes no
new answer until it has finished its batch. A remote host's seats are its own.

Waiting is fair between users: the next answer to start is that of the user with the fewest
answers running, then the one served longest ago, then the oldest request. One person may have
at most `max_per_user` answers running or waiting, and all of them together at most
`max_answers`: `reserve()` says no beyond. Stop reaches an answer in any state.

A model that several Ollama hosts have goes to the host with the fewest answers for its seats,
among those that answer; an answer of a conversation goes back to the host that wrote its
previous one (its prompt cache is there) unless that host is a whole batch busier. A host that
fails before the first token does not lose the answer: it moves to another host that has the
model; a failure once text has streamed stays an error (half an answer cannot be replayed).

Every answer runs in a worker thread of its own, which hands its events to the job's `sink`.
"""

from __future__ import annotations

import enum
import itertools
import logging
import math
import queue
import statistics
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from app.llm.catalogue import Catalogue
from app.llm.types import (
    ANSWER_MAX_CHARS,
    ANSWER_TOO_LONG,
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
    Progress,
    Text,
    Thinking,
    Trimmed,
)

log = logging.getLogger(__name__)
AFFINITIES_KEPT = 10_000  # conversations whose last host is remembered
# A refused request's Retry-After comes from how long the last ANSWERS_TIMED answers held their
# seat; before any, an answer is taken to last TYPICAL_ANSWER_SECONDS.
ANSWERS_TIMED = 20
TYPICAL_ANSWER_SECONDS = 30.0
RETRY_AFTER_MAX = 3600


@dataclass(frozen=True)
class GenerationRequest:
    key: str  # the answer's job id: random, never reused; how Stop finds it
    user_id: int
    model_id: str
    messages: list[ChatMessage]
    options: GenerationOptions = field(default_factory=GenerationOptions)
    # A cold start (benchmarks): the model is unloaded first, once the job holds its turn, so
    # the measurement includes the load and no other answer loses its model mid-way.
    cold: bool = False
    # Measured alone (benchmarks): nothing else runs in its pool, nor on this machine's cores
    # when it decodes here, while it does.
    alone: bool = False
    # Answers with the same affinity (a conversation) go back to the engine that wrote the
    # last one, where its prompt is cached.
    affinity: str = ""


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


class Refusal(enum.StrEnum):
    """Why `reserve()` said no."""

    FULL = "full"  # max_answers are running or waiting
    USER = "user"  # this person already has max_per_user
    CLOSED = "closed"  # the server is shutting down


class Meter(Protocol):
    """What measures each answer's share of its engine process's CPU (app.metrics gives one)."""

    def begin(self, key: str, pool: str, processes: Callable[[], list | None]) -> None: ...

    def work(self, key: str, tokens: int) -> None: ...

    def end(self, key: str) -> dict: ...


class _NoMeter:
    def begin(self, key, pool, processes) -> None:
        pass

    def work(self, key, tokens) -> None:
        pass

    def end(self, key) -> dict:
        return {}


class Job:
    def __init__(self, request: GenerationRequest, seq: int, sink: Callable[[Event], None] | None = None):
        self.request = request
        self.seq = seq  # arrival order
        self.claim = Claim()
        self.engine = None  # the engine (host) chosen for it; None: no engine has the model
        self.tried: set[str] = set()  # the engines it was sent to, so a retry goes elsewhere
        self.cancelled = threading.Event()
        self.cancel_outcome = Outcome.STOPPED
        self.admitted = threading.Event()
        self.admitted_at = 0.0  # monotonic
        self.position = 0  # in its queue, 0 while running
        self.ended = threading.Event()
        self.queued_seconds = 0.0
        self.concurrent = 1  # answers running in its pool with this one, at most
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._sink = sink or self._events.put
        self._cancel_lock = threading.Lock()
        self._wake: Callable[[], None] = lambda: None
        # perf_counter() when the engine gave its first text (thinking or answer), its first
        # answer text, and its end: what a reader that comes later times the answer by.
        self.first_token_at: float | None = None
        self.first_answer_at: float | None = None
        self.ended_at: float | None = None

    def cancel(self, outcome: Outcome) -> bool:
        """Ask the answer to stop; the first reason given is the one recorded. False when it
        had been asked already."""
        with self._cancel_lock:  # Stop and a sign-out at the same instant: the first one counts
            if self.cancelled.is_set():
                return False
            self.cancel_outcome = outcome
            self.cancelled.set()
        self._wake()
        return True

    def emit(self, event: Event) -> None:
        now = time.perf_counter()
        if isinstance(event, Text | Thinking) and self.first_token_at is None:
            self.first_token_at = now
        if isinstance(event, Text) and self.first_answer_at is None:
            self.first_answer_at = now
        if isinstance(event, Finished | Failed):
            self.ended_at = now
        self._sink(event)

    def events(self, tick: float = 0.5) -> Iterator[Event | None]:
        """The job's events until it ends (when no sink was given); None every `tick` seconds
        while nothing happens."""
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
        self,
        catalogue: Catalogue,
        max_answers: int = 0,
        max_per_user: int = 0,
        meter: Meter | None = None,
    ) -> None:
        """`max_answers`: answers running or waiting at once (0: no bound); `max_per_user`: of
        one person (0: no bound); `meter`: measures each answer's share of its engine's CPU."""
        self.catalogue = catalogue
        self.max_answers = max_answers
        self.max_per_user = max_per_user
        self.meter = meter or _NoMeter()
        self._cond = threading.Condition()
        self._jobs: dict[str, Job] = {}  # waiting or running, by key
        self._waiting: list[Job] = []
        self._running: set[Job] = set()
        self._in_use: Counter[str] = Counter()  # seats taken, per pool
        self._assigned: Counter[str] = Counter()  # answers waiting or running, per engine (host)
        self._running_per_user: Counter[int] = Counter()
        self._per_user: Counter[int] = Counter()  # running, waiting or reserved
        self._served_at: dict[int, float] = {}  # when each user's last answer started
        self._affinity: OrderedDict[str, str] = OrderedDict()  # affinity -> engine name
        self._reserved = 0
        self._closed = False
        self._seq = itertools.count()
        self._answer_seconds: deque[float] = deque(maxlen=ANSWERS_TIMED)  # seat held, complete answers

    # -- the answers layer's side --------------------------------------------------------------
    def reserve(self, user_id: int, capped: bool = True, limit: int | None = None) -> Refusal | None:
        """Hold a place for an answer about to be submitted; why not, else None. `capped`:
        the per-person bound applies (not to benchmarks, which run one answer at a time);
        `limit`: this person's bound (their groups' answers at once; 0: none), else
        `max_per_user`."""
        bound = self.max_per_user if limit is None else limit
        with self._cond:
            if self._closed:
                return Refusal.CLOSED
            if self.max_answers and len(self._jobs) + self._reserved >= self.max_answers:
                return Refusal.FULL
            if capped and bound and self._per_user[user_id] >= bound:
                return Refusal.USER
            self._reserved += 1
            self._per_user[user_id] += 1
            return None

    def seconds_until_a_place(self, user_id: int | None = None) -> int:
        """A refused request's Retry-After: when a place should free — any, or one of `user_id`'s
        — from where the answers holding places are (running, or their place in the queue) and
        how long the last answers took."""
        with self._cond:
            timed = self._answer_seconds
            typical = statistics.median(timed) if timed else TYPICAL_ANSWER_SECONDS
            now = time.monotonic()
            ends = []
            for job in self._jobs.values():
                if user_id is not None and job.request.user_id != user_id:
                    continue
                if job in self._running:  # an answer past the typical length may end any moment
                    ends.append(max(typical - (now - job.admitted_at), typical / 10))
                else:  # the batches before its turn, then its own
                    batches = math.ceil(max(job.position, 1) / max(job.claim.seats, 1))
                    ends.append((batches + 1) * typical)
        return max(1, min(RETRY_AFTER_MAX, math.ceil(min(ends, default=typical))))

    def release(self, user_id: int) -> None:
        """Give back a place reserved but not used."""
        with self._cond:
            self._reserved = max(0, self._reserved - 1)
            self._per_user[user_id] = max(0, self._per_user[user_id] - 1)

    def submit(
        self, request: GenerationRequest, reserved: bool = False, sink: Callable[[Event], None] | None = None
    ) -> Job:
        """Start an answer (a place reserved by `reserve()`, unless not `reserved`); its events
        go to `sink` (else to `Job.events()`)."""
        job = Job(request, next(self._seq), sink)
        job._wake = self._wake
        serving = self.catalogue.candidates(request.model_id)  # outside the lock: it may ask hosts
        with self._cond:
            if serving:
                self._route(job, serving)
            if reserved:
                self._reserved = max(0, self._reserved - 1)
            else:
                self._per_user[request.user_id] += 1
            self._jobs[request.key] = job
            if job.engine is not None:  # with none, it fails at once, never holding a seat
                self._waiting.append(job)
            if self._closed:  # shutting down: it ends at once, as interrupted
                job.cancel(Outcome.INTERRUPTED)
            self._dispatch()
        try:
            threading.Thread(
                target=self._run, args=(job,), name=f"answer-{request.key[:8]}", daemon=True
            ).start()
        except BaseException:
            with self._cond:
                self._forget(job)
                if reserved:  # the caller gives its place back
                    self._reserved += 1
                    self._per_user[request.user_id] += 1
            raise
        return job

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Take no more answers (shutdown): `reserve()` says no, a late `submit()` ends at once."""
        with self._cond:
            self._closed = True

    def cancel(self, key: str, outcome: Outcome) -> bool:
        """Cancel the answer `key`, waiting or running; False when there is none."""
        with self._cond:
            job = self._jobs.get(key)
        if job is None:
            return False
        job.cancel(outcome)
        return True

    def cancel_all(self, outcome: Outcome) -> int:
        """Cancel every answer, waiting or running (shutdown); returns how many there were."""
        with self._cond:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel(outcome)
        return len(jobs)

    def is_active(self, key: str) -> bool:
        with self._cond:
            return key in self._jobs

    def active(self) -> int:
        """Answers waiting or running, and places reserved for those about to be."""
        with self._cond:
            return len(self._jobs) + self._reserved

    def occupancy(self) -> dict[str, tuple[int, int]]:
        """Answers (running, waiting) per engine name, for the admin; engines idle are left out."""
        with self._cond:
            running = Counter(job.engine.name for job in self._running if job.engine is not None)
            waiting = Counter(job.engine.name for job in self._waiting if job.engine is not None)
        return {name: (running[name], waiting[name]) for name in running | waiting}

    def pools(self) -> dict[str, tuple[int, int, int]]:
        """(running, waiting, seats) per pool with answers, for the admin."""
        with self._cond:
            seats = {job.claim.pool: job.claim.seats for job in self._jobs.values()}
            waiting = Counter(job.claim.pool for job in self._waiting)
            return {pool: (self._in_use[pool], waiting[pool], seats[pool]) for pool in seats}

    def together(self, requests: list[tuple[str, GenerationOptions]]) -> bool:
        """Whether answers with these models and options would be written at the same time,
        the server otherwise idle (what the compare page tells its user)."""
        wanted: Counter[str] = Counter()
        seats: dict[str, int] = {}
        local: set[str] = set()
        for model_id, options in requests:
            found = self.catalogue.find(model_id)
            if found is None:
                continue
            claim = found[0].claim(model_id, options)
            wanted[claim.pool] += 1
            seats[claim.pool] = claim.seats
            if claim.local:
                local.add(claim.pool)
        return len(local) <= 1 and all(wanted[pool] <= seats[pool] for pool in wanted)

    def _wake(self) -> None:
        with self._cond:
            self._dispatch()
            self._cond.notify_all()

    # -- which host ---------------------------------------------------------------------------
    def _route(self, job: Job, serving: list) -> bool:
        """Send the job to the engine (host) with the fewest answers for its seats among those
        that may serve its model, skipping those it was sent to and hosts that do not answer;
        back to the conversation's last host unless that one is a whole batch busier. None
        answers: the first, whose failure says why. False when a retry finds nowhere else to
        go. The caller holds the lock."""
        request = job.request
        usable = [found for found in serving if found[0].name not in job.tried and found[1].usable]
        if not usable:
            if job.tried:
                return False
            usable = serving[:1]
        claims = {engine.name: engine.claim(request.model_id, request.options) for engine, _ in usable}

        def load(engine) -> float:
            return self._assigned[engine.name] / max(1, claims[engine.name].seats)

        engine = min(usable, key=lambda found: load(found[0]))[0]
        last = self._affinity.get(request.affinity) if request.affinity else None
        previous = next((found[0] for found in usable if found[0].name == last), None)
        if previous is not None and load(previous) - load(engine) < 1:
            engine = previous
        claim = claims[engine.name]
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
            job.admitted.clear()
            self._waiting.append(job)
            self._dispatch()
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

    def _dispatch(self) -> None:
        """Start every waiting answer that may start now, fairest first; tell the others their
        place (the caller holds the lock).

        No answer overtakes a fairer one waiting for the same pool; and once a fairer answer
        waits for this machine's cores, held by another pool, that pool takes no new answer:
        it finishes its batch, then the cores change hands. A pool that takes the cores takes
        every answer of its own waiting then, up to its seats, fairer answers of other pools
        notwithstanding (they could not start before its batch ends anyway): the batch is as
        full as the queue allows, the fewer times the cores change hands."""
        local_running = {j.claim.pool for j in self._running if j.claim.local}
        alone = [j for j in self._running if j.request.alone]
        opening: str | None = None  # the pool that takes the free cores in this pass
        blocked: set[str] = set()  # pools where a fairer answer waits
        cores_wanted_by: str | None = None  # the pool of the fairest answer waiting for the cores
        ahead: Counter[str] = Counter()  # waiting answers so far, per pool, and "cores"
        for job in self._order():
            if job.cancelled.is_set():
                continue  # its thread takes it out
            claim = job.claim
            fits = (
                claim.pool not in blocked
                and self._in_use[claim.pool] + self._seats_taken(job) <= claim.seats
                and not any(j.claim.pool == claim.pool for j in alone)
            )
            if claim.local:
                fits = (
                    fits
                    and (cores_wanted_by in (None, claim.pool) or opening == claim.pool)
                    and local_running <= {claim.pool}
                    and not any(j.claim.local for j in alone)
                )
            if job.request.alone:
                fits = fits and self._in_use[claim.pool] == 0 and not (claim.local and local_running)
            if fits:
                self._take(job)
                if claim.local and not local_running:
                    opening = claim.pool
                if claim.local:
                    local_running.add(claim.pool)
                if job.request.alone:
                    alone.append(job)
                continue
            blocked.add(claim.pool)
            if claim.local and cores_wanted_by is None and not local_running <= {claim.pool}:
                cores_wanted_by = claim.pool
            position = (
                1 + ahead[claim.pool] + (ahead["cores"] - ahead[f"cores:{claim.pool}"] if claim.local else 0)
            )
            ahead[claim.pool] += 1
            if claim.local:
                ahead["cores"] += 1
                ahead[f"cores:{claim.pool}"] += 1
            if position != job.position:
                job.position = position
                self._cond.notify_all()

    def _seats_taken(self, job: Job) -> int:
        return job.claim.seats if job.request.alone else 1

    def _take(self, job: Job) -> None:
        claim, user = job.claim, job.request.user_id
        self._waiting.remove(job)
        self._in_use[claim.pool] += self._seats_taken(job)
        self._running_per_user[user] += 1
        self._served_at[user] = time.monotonic()
        self._running.add(job)
        together = [j for j in self._running if j.claim.pool == claim.pool]
        for running in together:  # measurements made side by side are told apart
            running.concurrent = max(running.concurrent, len(together))
        job.position = 0
        job.admitted_at = time.monotonic()
        job.admitted.set()
        self._cond.notify_all()

    def _leave(self, job: Job) -> None:
        with self._cond:
            self._give_back(job)
            self._dispatch()
            self._cond.notify_all()

    def _give_back(self, job: Job) -> None:
        """Its seat, when it holds one (the caller holds the lock)."""
        if job in self._running:
            self._in_use[job.claim.pool] -= self._seats_taken(job)
            self._running_per_user[job.request.user_id] -= 1
            self._running.discard(job)

    def _forget(self, job: Job) -> None:
        """The job is over: it holds nothing any more, a seat it was given and never used
        included (cancelled the instant it was admitted). The caller holds the lock."""
        self._give_back(job)
        self._jobs.pop(job.request.key, None)
        if job in self._waiting:  # it ended before its turn came
            self._waiting.remove(job)
        if job.engine is not None:
            self._assigned[job.engine.name] -= 1
        self._per_user[job.request.user_id] = max(0, self._per_user[job.request.user_id] - 1)
        self._dispatch()
        self._cond.notify_all()

    # -- the worker --------------------------------------------------------------------------
    def _run(self, job: Job) -> None:
        end: Finished | Failed | None = None
        try:
            if job.engine is None:
                end = Failed(EngineError(MODEL_NOT_FOUND, job.request.model_id))
                return
            while True:
                if not self._wait_for_turn(job):
                    end = Finished(job.cancel_outcome, GenerationStats(finish_reason="cancelled"))
                    return
                try:
                    end = self._generate(job, job.engine)
                finally:
                    self._leave(job)
                if (
                    isinstance(end, Failed)
                    and end.error.retry_elsewhere
                    and self._retry_elsewhere(job, end.error)
                ):
                    end = None
                    continue
                if isinstance(end, Failed):
                    log.warning("answer %s failed: %s", job.request.key, end.error)
                elif end.outcome == Outcome.COMPLETE:
                    with self._cond:
                        self._answer_seconds.append(time.monotonic() - job.admitted_at)
                if isinstance(end, Finished) and job.request.affinity:
                    with self._cond:
                        self._affinity[job.request.affinity] = job.engine.name
                        self._affinity.move_to_end(job.request.affinity)
                        while len(self._affinity) > AFFINITIES_KEPT:
                            self._affinity.popitem(last=False)
                return
        except Exception as exc:  # a bug of ours must not leave the answer hanging
            log.exception("answer %s crashed", job.request.key)
            end = Failed(EngineError(GENERATION_FAILED, repr(exc)))
        finally:
            with self._cond:
                self._forget(job)
            # Told once the answer holds no seat: whoever hears it may start another at once.
            try:
                if end is not None:
                    job.emit(end)
            except Exception:  # the listener's failure must not leave the job unended
                log.exception("answer %s: its end could not be handed over", job.request.key)
            finally:
                job.ended.set()

    def _wait_for_turn(self, job: Job) -> bool:
        told = 0
        started = time.monotonic()
        while True:
            with self._cond:
                if job.cancelled.is_set():
                    if job in self._waiting:
                        self._waiting.remove(job)
                        self._dispatch()
                    return False
                if job.admitted.is_set():
                    job.queued_seconds += time.monotonic() - started  # a retry waits again
                    return True
                position = job.position
                if position == told:
                    self._cond.wait(timeout=1.0)
                    continue
            if position:
                job.emit(Queued(position))  # outside the lock: the sink may take its own
            told = position

    def _generate(self, job: Job, engine) -> Finished | Failed:
        """Stream the answer through the job; its ending (not yet emitted)."""
        request = job.request
        streamed = False
        key = request.key
        try:
            final = None
            if request.cold:
                engine.unload(request.model_id)
            self.meter.begin(key, job.claim.pool, lambda: engine.processes(request.model_id))
            try:
                chunks = engine.stream_chat(
                    request.model_id, request.messages, request.options, job.cancelled
                )
                written = 0  # characters of text and thinking
                for chunk in chunks:
                    if isinstance(chunk, Final):
                        final = chunk
                        break
                    if isinstance(chunk, Progress):
                        self.meter.work(key, chunk.tokens)
                        continue
                    if isinstance(chunk, Text | Thinking):
                        written += len(chunk.text)
                        if written > ANSWER_MAX_CHARS:  # whatever the engine, a runaway ends here
                            chunks.close()
                            raise EngineError(ANSWER_TOO_LONG, f"more than {ANSWER_MAX_CHARS} characters")
                        self.meter.work(key, 1)
                        streamed = True
                    job.emit(chunk)
                    if job.cancelled.is_set() and not isinstance(chunk, Text | Thinking):
                        # Cancelled while loading or before the first token: no need to go on.
                        chunks.close()
                        break
            finally:
                usage = self.meter.end(key)
            if final is None and not job.cancelled.is_set():
                raise EngineError(GENERATION_FAILED, "the engine ended without its statistics")
            stats = final.stats if final else GenerationStats(finish_reason="cancelled")
            stats.queue_seconds = job.queued_seconds
            stats.concurrent = job.concurrent
            stats.resources = usage
            outcome = job.cancel_outcome if job.cancelled.is_set() else Outcome.COMPLETE
            return Finished(outcome, stats)
        except EngineError as exc:
            if not (exc.retry_elsewhere and not streamed and not job.cancelled.is_set()):
                exc.retry_elsewhere = False  # an error for the user, not a retry
            return Failed(exc)
        except Exception as exc:  # an engine bug must not kill the worker silently
            log.exception("answer %s crashed", key)
            return Failed(EngineError(GENERATION_FAILED, repr(exc)))
