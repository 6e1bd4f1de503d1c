"""Benchmark runs: created from the admin's choices, executed through the scheduler, measured.

A run asks each model every prompt of a suite (so many times, thinking on and/or off), one
answer at a time, through the same scheduler as the chat: colleagues chatting meanwhile take
their turns between the benchmark's answers, and no answer of either is measured while the
other decodes on the same cores. The page's runs execute in one background thread, one run
after the other (two runs at once would measure each other); the command line executes its
run in its own thread and process.
"""

from __future__ import annotations

import enum
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import sqlalchemy as sa
from flask import Flask
from flask_babel import gettext as _

from app import answers
from app.answers.pipeline import Asking, Refused, new_answer_id
from app.bench import checks, judge, machine
from app.bench.documents import Library, owner_for, passage_found
from app.bench.suites import Prompt, Suite
from app.documents.context import prompt_with_passages
from app.extensions import db
from app.llm.catalogue import Entry
from app.llm.types import ChatMessage, GenerationOptions, Outcome
from app.models import BenchmarkResult, BenchmarkRun, utcnow

log = logging.getLogger(__name__)

BENCH_USER = 0  # the scheduler's user for benchmark answers: fair against every real user
WARM_UP = [ChatMessage("user", "Bonjour")]
JUDGE_MAX_TOKENS = 200


class RunState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # the server stopped during the run


UNFINISHED = (RunState.QUEUED, RunState.RUNNING)
START_CHOICES = ("warm", "cold")
THINKING_CHOICES = ("default", "on", "off", "both")


@dataclass(frozen=True)
class Plan:
    """What the admin asked for, checked against the catalogue."""

    suite: Suite
    models: list[str]
    repetitions: int = 1
    start: str = "warm"
    thinking: str = "default"
    judge_model: str = ""


def think_modes(thinking: str, entry: Entry | None) -> list[bool | None]:
    """The thinking switches a model is asked with: None for a model that cannot think;
    "default" is the admin's setting for the model (thinking, unless switched off)."""
    if entry is None or not entry.info.thinking:
        return [None]
    default = [entry.prefs.think is not False]
    return {"on": [True], "off": [False], "both": [True, False]}.get(thinking, default)


def step_count(plan: Plan, entries: dict[str, Entry]) -> int:
    answers = sum(len(think_modes(plan.thinking, entries.get(m))) for m in plan.models)
    answers *= len(plan.suite.prompts) * plan.repetitions
    return answers * (2 if plan.judge_model else 1)  # each answer judged is one more step


def create_run(plan: Plan, entries: dict[str, Entry], source: str, user_id: int | None) -> BenchmarkRun:
    run = BenchmarkRun(
        uid=uuid.uuid4().hex,
        source=source,
        user_id=user_id,
        state=RunState.QUEUED.value,
        suite_id=plan.suite.id,
        suite_name=plan.suite.name,
        suite=plan.suite.as_dict(),
        models=list(plan.models),
        repetitions=plan.repetitions,
        start=plan.start,
        thinking=plan.thinking,
        judge_model=plan.judge_model,
        steps_total=step_count(plan, entries),
    )
    db.session.add(run)
    db.session.commit()
    return run


def cancel_queued(run_id: int) -> bool:
    """End a run that has not started; False when it started meanwhile (or had ended)."""
    ended = db.session.execute(
        sa.update(BenchmarkRun)
        .where(BenchmarkRun.id == run_id, BenchmarkRun.state == RunState.QUEUED.value)
        .values(state=RunState.CANCELLED.value, finished_at=utcnow())
    )
    db.session.commit()
    return ended.rowcount == 1


def mark_interrupted(run_id: int) -> None:
    """A run no process of ours runs (a command line's, a dead process's): it ends as it stands."""
    db.session.execute(
        sa.update(BenchmarkRun)
        .where(BenchmarkRun.id == run_id, BenchmarkRun.state.in_([s.value for s in UNFINISHED]))
        .values(state=RunState.INTERRUPTED.value, finished_at=utcnow())
    )
    db.session.commit()


def sweep_unfinished_runs() -> int:
    """The page's runs left queued or running by a stopped server are marked interrupted (at
    start-up). A command-line run may be alive in its own process: it is left alone."""
    result = db.session.execute(
        sa.update(BenchmarkRun)
        .where(BenchmarkRun.state.in_([s.value for s in UNFINISHED]), BenchmarkRun.source == "page")
        .values(state=RunState.INTERRUPTED.value, finished_at=utcnow())
    )
    db.session.commit()
    return result.rowcount


class Cancelled(Exception):
    """The admin cancelled the run (or pressed Ctrl-C)."""


class Interrupted(Exception):
    """The server is shutting down."""


@dataclass
class Live:
    """The step being run, for the progress bar: what no database row holds yet."""

    model: str = ""
    prompt: str = ""
    repetition: int = 0
    think: bool | None = None
    phase: str = ""  # indexing | queued | warming | loading | prompt | thinking | answering | judging
    position: int = 0
    tokens: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Answer:
    """What one generation through the scheduler gave."""

    text: str = ""
    thinking: str = ""
    outcome: Outcome = Outcome.COMPLETE
    stats: dict = field(default_factory=dict)
    error: str = ""  # why it failed, with the technical detail


class BenchmarkRunner:
    """Executes runs: the page's in a background thread, in order; the CLI's in its own."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._queue: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._cancelled: set[int] = set()
        self._pending: set[int] = set()  # queued or running here
        self._live: dict[int, Live] = {}
        self._jobs: dict[int, object] = {}  # run id -> the answer being written for it
        self.idle = threading.Event()  # set while the background thread has nothing to do
        self.idle.set()

    # -- the page's side ---------------------------------------------------------------------
    def enqueue(self, run_id: int) -> None:
        with self._lock:
            self.idle.clear()
            self._pending.add(run_id)
            self._queue.put(run_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="benchmarks", daemon=True)
                self._thread.start()

    def cancel(self, run_id: int) -> str:
        """Stop a run of ours: "running" — its current answer is stopped (which frees the engine
        at once) and no other starts; "queued" — it has not started (`cancel_queued` ends it
        in the database); "" — not ours."""
        with self._lock:
            if run_id not in self._pending:
                return ""
            if run_id not in self._live:
                return "queued"
            self._cancelled.add(run_id)
            job = self._jobs.get(run_id)
        if job is not None:
            job.cancel(Outcome.STOPPED)
        return "running"

    def live(self, run_id: int) -> dict | None:
        with self._lock:
            current = self._live.get(run_id)
            return current.as_dict() if current else None

    def _work(self) -> None:
        while True:
            with self._lock:
                if self._queue.empty():  # decided under the lock: enqueue() then starts a thread
                    self._thread = None
                    self.idle.set()
                    return
                run_id = self._queue.get()
            with self.app.app_context():
                try:
                    self.execute(run_id)
                except Exception:  # a bug in one run must not stop the next ones
                    log.exception("benchmark run %s crashed", run_id)
                finally:
                    db.session.remove()

    # -- executing one run -------------------------------------------------------------------
    def execute(self, run_id: int, report: Callable[[str], None] = lambda line: None) -> BenchmarkRun:
        """Run every step of a queued run, storing each result as it comes; `report` hears
        one line per step (the command line prints them)."""
        run = None
        try:
            with self._lock:
                self._pending.add(run_id)  # the command line runs it without enqueue()
                self._live[run_id] = Live()  # from here, cancel() stops it rather than unqueue it
            run = db.session.get(BenchmarkRun, run_id)
            # Started only if still queued: cancelled meanwhile (or deleted), it is left alone.
            started = db.session.execute(
                sa.update(BenchmarkRun)
                .where(BenchmarkRun.id == run_id, BenchmarkRun.state == RunState.QUEUED.value)
                .values(state=RunState.RUNNING.value, started_at=utcnow())
            )
            db.session.commit()
            if run is None or started.rowcount != 1:
                return run
            db.session.refresh(run)
            return self._execute(run, report)
        except Cancelled:
            return self._end(run, RunState.CANCELLED)
        except KeyboardInterrupt:
            self._end(run, RunState.CANCELLED)
            raise
        except Interrupted:
            return self._end(run, RunState.INTERRUPTED)
        except Exception as exc:
            log.exception("benchmark run %s failed", run_id)
            db.session.rollback()
            run.error = repr(exc)[:2000]
            return self._end(run, RunState.FAILED)
        finally:
            with self._lock:
                self._live.pop(run_id, None)
                self._cancelled.discard(run_id)
                self._pending.discard(run_id)
                job = self._jobs.pop(run_id, None)
            if job is not None:  # Ctrl-C or a crash left it running
                job.cancel(Outcome.STOPPED)

    def _execute(self, run: BenchmarkRun, report) -> BenchmarkRun:
        statuses = self.app.extensions["llm"].catalogue.statuses()
        run.machine = machine.describe(statuses)
        run.machine_label = machine.label(run.machine)
        db.session.commit()
        self._check_cancelled(run.id)
        versions = {s.engine: s.version for s in statuses}
        suite = Suite.from_dict(run.suite)
        library = None
        try:
            if suite.documents:  # indexed once for the run, for every model
                self._live_update(run.id, phase="indexing")
                folder = self.app.config["BENCH_SUITES_DIR"]
                library = Library.of_suite(suite, folder, owner_for(run.user_id))
                self._check_cancelled(run.id)
            for model_id in run.models:
                self._benchmark_model(run, suite, model_id, versions, report, library)
            if run.judge_model:
                self._judge(run, suite, report)
        finally:
            if library is not None:
                library.remove()
        return self._end(run, RunState.DONE)

    def _end(self, run: BenchmarkRun, state: RunState) -> BenchmarkRun:
        run.state, run.finished_at = state.value, utcnow()
        db.session.commit()
        return run

    def _benchmark_model(
        self, run, suite: Suite, model_id: str, versions: dict, report, library: Library | None = None
    ) -> None:
        entry = self.app.extensions["llm"].catalogue.entry(model_id)
        modes = think_modes(run.thinking, entry)
        if entry is None or not entry.info.usable:
            # Gone since the run was asked for: every step says so, and the run goes on.
            problem = entry.info.problem if entry else _("This model is no longer on any engine.")
            for think in modes:
                for prompt in suite.prompts:
                    for repetition in range(1, run.repetitions + 1):
                        self._store(run, model_id, prompt, repetition, think, error=problem)
            return
        if run.start == "warm":
            self._live_update(run.id, model=model_id, prompt="", phase="warming", tokens=0)
            # The first prompt's own options: a load-time setting that differed would reload it.
            first = replace(_options(suite.prompts[0], entry, modes[0]), max_tokens=1)
            self._generate(run, entry, WARM_UP, first)
        for think in modes:
            for prompt in suite.prompts:
                # The same passages for every repetition and model: searched once per prompt.
                passages = library.passages(prompt.text) if library is not None else None
                for repetition in range(1, run.repetitions + 1):
                    self._live_update(
                        run.id, model=model_id, prompt=prompt.name, repetition=repetition, think=think
                    )
                    messages, sources = _messages(prompt, passages)
                    answer = self._generate(
                        run,
                        entry,
                        messages,
                        _options(prompt, entry, think),
                        cold=run.start == "cold",
                    )
                    result = self._store(
                        run,
                        model_id,
                        prompt,
                        repetition,
                        think,
                        answer=answer,
                        entry=entry,
                        versions=versions,
                        sources=sources,
                    )
                    report(_report_line(result))

    def _generate(self, run, entry: Entry, messages, options, cold: bool = False) -> Answer:
        """One answer through the answers pipeline, its events followed for the progress bar."""
        while True:
            try:
                with answers.place(BENCH_USER, capped=False) as held:
                    asking = Asking(
                        user_id=BENCH_USER,
                        entry=entry,
                        messages=messages,
                        options=options,
                        received_at=time.perf_counter(),
                        recorded=False,  # its figures go to the run's results
                        detailed_errors=True,  # the admin reads why
                        cold=cold,
                        # Its figures are the model's alone: nothing else decodes on its cores meanwhile.
                        alone=True,
                    )
                    live = answers.start(asking, held, new_answer_id())
                break
            except Refused:  # the queue is full of chat answers: wait for a place
                if self.app.extensions["llm"].scheduler.closed:
                    raise Interrupted from None
                self._check_cancelled(run.id)
                time.sleep(0.5)
        with self._lock:
            self._jobs[run.id] = live
            if run.id in self._cancelled:
                live.cancel(Outcome.STOPPED)
        answer = Answer()
        tokens = 0
        for event in live.follow():
            if event.name in ("token", "thinking"):
                tokens += 1
                self._live_update(
                    run.id, phase="answering" if event.name == "token" else "thinking", tokens=tokens
                )
            elif event.name == "status" and event.data["phase"] == "queued":
                self._live_update(run.id, phase="queued", position=event.data["position"])
            elif event.name == "status":
                self._live_update(run.id, phase=event.data["phase"])
        with self._lock:
            self._jobs.pop(run.id, None)
        answer.text, answer.thinking = live.text, live.thinking_text
        answer.outcome, answer.stats = live.outcome, live.stats
        if live.outcome == Outcome.ERROR:
            answer.error = live.error
        if answer.outcome == Outcome.INTERRUPTED:
            raise Interrupted
        if answer.outcome != Outcome.COMPLETE and answer.outcome != Outcome.ERROR:
            raise Cancelled
        return answer

    def _check_cancelled(self, run_id: int) -> None:
        with self._lock:
            if run_id in self._cancelled:
                raise Cancelled

    def _live_update(self, run_id: int, **values) -> None:
        with self._lock:
            current = self._live.get(run_id)
            if current is not None:
                for name, value in values.items():
                    setattr(current, name, value)
                if "phase" in values and values["phase"] != "queued":
                    current.position = 0

    def _store(
        self,
        run,
        model_id: str,
        prompt: Prompt,
        repetition: int,
        think,
        answer: Answer | None = None,
        entry: Entry | None = None,
        versions: dict | None = None,
        error: str = "",
        sources: list[dict] | None = None,
    ) -> BenchmarkResult:
        result = BenchmarkResult(
            run=run,
            model=model_id,
            prompt_id=prompt.id,
            prompt_name=prompt.name,
            repetition=repetition,
            think=think,
            outcome=Outcome.ERROR.value,
            error=error,
        )
        if answer is not None:
            measure(result, answer, run.machine.get("memory_bytes") or 0)
            result.engine = entry.info.engine
            result.engine_version = (versions or {}).get(entry.info.engine, "")
            result.model_memory_bytes = _model_memory(self.app, model_id)
            if answer.outcome == Outcome.COMPLETE:
                cited = [source["name"] for source in sources or []]
                verdict = checks.run(prompt.check, answer.text, source=prompt.source, sources=cited)
                result.passed, result.check = verdict.passed, verdict.as_dict()
        if sources is not None:  # a documents suite: was the passage that answers among those sent?
            result.check = {**(result.check or {}), "retrieval": _retrieval(prompt, sources)}
        db.session.add(result)
        run.steps_done += 1
        db.session.commit()
        self._check_cancelled(run.id)
        return result

    # -- the judge ---------------------------------------------------------------------------
    def _judge(self, run, suite: Suite, report) -> None:
        catalogue = self.app.extensions["llm"].catalogue
        entry = catalogue.entry(run.judge_model)
        prompts = {p.id: p for p in suite.prompts}
        schema = json.dumps(judge.VERDICT_SCHEMA)
        for result in list(run.results):
            self._live_update(
                run.id, model=run.judge_model, prompt=result.prompt_name, phase="judging", tokens=0
            )
            prompt = prompts.get(result.prompt_id)
            if entry is None or not entry.info.usable:
                result.judge_reason = _("The judge “%(model)s” is not available.", model=run.judge_model)
            elif result.outcome == Outcome.COMPLETE.value and prompt is not None:
                options = GenerationOptions(
                    max_tokens=JUDGE_MAX_TOKENS,
                    temperature=0.0,
                    top_k=1,
                    seed=42,
                    context=entry.prefs.context,
                    threads=entry.prefs.threads,
                    think=False if entry.info.thinking else None,  # the verdict, not its reasoning
                    json_schema=schema,
                    cache_prompt=False,
                )
                reply = self._generate(
                    run, entry, judge.judge_messages(prompt.text, prompt.reference, result.answer), options
                )
                verdict = judge.parse_verdict(reply.text)
                result.judge_score, result.judge_reason, result.judge_reply = (
                    verdict.score,
                    verdict.reason,
                    reply.text,
                )
            run.steps_done += 1
            db.session.commit()
            report(f"judge {run.judge_model}: {result.model} / {result.prompt_name}: {result.judge_score}")
            self._check_cancelled(run.id)


def _messages(prompt: Prompt, passages=None) -> tuple[list[ChatMessage], list[dict] | None]:
    """The prompt's messages, and for a documents suite the passages sent with it (their sources
    as the chat stores them): the question written with its passages as the chat writes it."""
    system = [ChatMessage("system", prompt.system)] if prompt.system else []
    if passages is None:
        return [*system, ChatMessage("user", prompt.text)], None
    text, sources = prompt_with_passages(prompt.text, passages)
    return [*system, ChatMessage("user", text)], sources["passages"]


def _retrieval(prompt: Prompt, sources: list[dict]) -> dict:
    """recall@5 for one prompt, and where the passages sent came from (the answer's [n])."""
    return {
        "found": passage_found(sources, prompt.source, prompt.passage),
        "passages": [{"n": s["n"], "name": s["name"], "page": s["page"]} for s in sources],
    }


def _options(prompt: Prompt, entry: Entry, think: bool | None) -> GenerationOptions:
    """The prompt's own settings (greedy, a fixed seed: repeatable), with the model's load-time
    settings as the admin set them, so the figures are those users will get."""
    return GenerationOptions(
        max_tokens=prompt.max_tokens,
        temperature=prompt.temperature,
        top_k=prompt.top_k,
        top_p=prompt.top_p,
        seed=prompt.seed,
        context=entry.prefs.context,
        threads=entry.prefs.threads,
        think=think,
        # Each answer reads its prompt: a prompt cached by the previous repetition would make
        # the first token look faster than a user's first question gets it.
        cache_prompt=False,
    )


def measure(result: BenchmarkResult, answer: Answer, machine_memory: int) -> None:
    """The answer's figures onto its result: the engine's clock, the sampler's CPU and memory."""
    stats, usage = answer.stats, answer.stats.get("resources") or {}
    result.outcome = answer.outcome.value
    result.answer, result.thinking_text = answer.text, answer.thinking
    if answer.error:
        result.error = answer.error
    if not stats:
        return
    result.finish_reason = stats.get("finish_reason", "")
    result.threads = stats.get("threads") or None
    result.context = stats.get("context_window") or None
    result.load_seconds = stats.get("load_seconds")
    result.total_seconds = stats.get("total_seconds")
    result.first_token_seconds = stats.get("first_token_seconds") or None
    result.tokens_per_second = stats.get("tokens_per_second") or None
    result.prompt_tokens = stats.get("prompt_tokens")
    result.completion_tokens = stats.get("completion_tokens")
    result.thinking_tokens = stats.get("thinking_tokens") or 0
    result.queue_seconds = stats.get("queue_seconds")
    result.concurrent = stats.get("concurrent") or 1
    if answer.thinking and result.first_token_seconds is not None:
        # From the first thought to the first word of the answer (or the end, if none came).
        answered = stats.get("first_answer_seconds") or stats.get("total_seconds") or 0.0
        result.thinking_seconds = max(0.0, answered - result.first_token_seconds)
    result.cpu_percent_mean = usage.get("process_cpu_percent_mean")
    result.cpu_percent_peak = usage.get("process_cpu_percent_peak")
    result.memory_peak_bytes = usage.get("process_rss_peak_bytes")
    if result.memory_peak_bytes is not None and machine_memory:
        result.memory_percent_peak = 100 * result.memory_peak_bytes / machine_memory


def _model_memory(app: Flask, model_id: str) -> int | None:
    """What the model holds now it is loaded, as its engine reports it; None when unknown."""
    found = app.extensions["llm"].catalogue.find(model_id)
    memory = found[1].memory_bytes if found else 0
    return memory or None


def _report_line(result: BenchmarkResult) -> str:
    figures = [
        f"{result.total_seconds:.1f} s" if result.total_seconds is not None else "—",
        f"{result.tokens_per_second:.1f} tok/s" if result.tokens_per_second else "—",
        {True: "pass", False: "FAIL", None: "no check"}[result.passed],
    ]
    think = {True: " (thinking)", False: " (no thinking)", None: ""}[result.think]
    return f"{result.model}{think} / {result.prompt_name} #{result.repetition}: " + ", ".join(figures)
