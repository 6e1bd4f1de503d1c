"""Which models this server can serve: memory needed against memory here, and measured speed.

The memory a model needs is its weights plus the cache of its context window (f16 K and V for
every token of context, every layer); the engines' working buffers add a little on top, so a
model "fits" when that total leaves a quarter of the machine's memory for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _

from app.bench import machine as machines
from app.bench.runs import RunState
from app.extensions import db
from app.llm.catalogue import Entry
from app.models import BenchmarkResult, BenchmarkRun

ROOMY = 0.75  # of the machine's memory: beyond, it is tight
GOOD_SPEED = 10.0  # tokens/s: faster than people read, a chat feels live
USABLE_SPEED = 4.0  # tokens/s: readable as it streams, but long answers take minutes
RECENT_RUNS = 50  # how far back the last measured speed is looked for


@dataclass(frozen=True)
class Fit:
    entry: Entry
    context: int
    weights_bytes: int
    context_bytes: int | None  # None: the engine does not say what a token of context takes
    memory_total: int
    tokens_per_second: float | None
    measured_at: datetime | None
    passed: tuple[int, int] | None  # checks passed, checked, in that run
    remote: bool = False  # served by an Ollama host on another machine: its memory is not ours

    @property
    def needed_bytes(self) -> int:
        return self.weights_bytes + (self.context_bytes or 0)

    @property
    def memory(self) -> str:
        """fits | tight | too_big | elsewhere"""
        if self.remote:
            return "elsewhere"
        if self.needed_bytes > self.memory_total:
            return "too_big"
        return "fits" if self.needed_bytes <= ROOMY * self.memory_total else "tight"

    @property
    def advice(self) -> str:
        if not self.entry.info.usable:
            return _("Cannot be used: %(problem)s", problem=self.entry.info.problem)
        if self.memory == "too_big":
            return _("Not for this server: it needs more memory than the server has.")
        tight = self.memory == "tight"
        if self.remote and self.tokens_per_second is None:
            return _("Served by another machine: run a benchmark to know its speed from here.")
        if self.tokens_per_second is None:
            if tight:
                return _("Fits, barely: little memory is left. Run a benchmark to know its speed.")
            return _("Fits in memory. Run a benchmark to know its speed here.")
        if self.passed and self.passed[1] and self.passed[0] * 2 < self.passed[1]:
            # Speed is not enough: an answer that fails its checks is no answer.
            return _(
                "Its answers failed most checks of its last benchmark (%(passed)s of %(checked)s passed): "
                "read them before offering it.",
                passed=self.passed[0],
                checked=self.passed[1],
            )
        if self.tokens_per_second >= GOOD_SPEED:
            return (
                _("Good for chat: it writes faster than people read.")
                if not tight
                else _("Fast enough for chat, but it leaves little memory for anything else.")
            )
        if self.tokens_per_second >= USABLE_SPEED:
            return _("Usable for chat, slowly: long answers take minutes.")
        return _("Too slow for chat on this server: keep it for work that can wait.")


def fits(entries: list[Entry], this_machine: dict, remote_engines: set[str] = frozenset()) -> list[Fit]:
    speeds = last_speeds(this_machine)
    found = []
    for entry in entries:
        info = entry.info
        context = entry.prefs.context or info.load_context or info.context_length
        per_token = info.kv_bytes_per_token
        speed, measured_at, passed = speeds.get(entry.id, (None, None, None))
        found.append(
            Fit(
                entry=entry,
                context=context,
                weights_bytes=info.size_bytes,
                context_bytes=per_token * context if per_token and context else None,
                memory_total=this_machine.get("memory_bytes") or 0,
                tokens_per_second=speed,
                measured_at=measured_at,
                passed=passed,
                remote=info.engine in remote_engines,
            )
        )
    return found


def last_speeds(this_machine: dict) -> dict[str, tuple[float, datetime, tuple[int, int]]]:
    """Per model, the mean tokens/s of the newest run on this machine that measured it."""
    runs = db.session.scalars(
        db.select(BenchmarkRun)
        .where(
            BenchmarkRun.source != "import",
            BenchmarkRun.state.in_([RunState.DONE.value, RunState.CANCELLED.value]),
        )
        .order_by(BenchmarkRun.finished_at.desc(), BenchmarkRun.id.desc())
        .limit(RECENT_RUNS)
    )
    speeds: dict = {}
    for run in runs:
        if not machines.same_machine(run.machine or {}, this_machine):
            continue
        per_model: dict[str, list[BenchmarkResult]] = {}
        for result in run.results:
            per_model.setdefault(result.model, []).append(result)
        for model, results in per_model.items():
            measured = [r.tokens_per_second for r in results if r.tokens_per_second]
            if model in speeds or not measured:
                continue
            checked = [r for r in results if r.passed is not None]
            passed = (sum(bool(r.passed) for r in checked), len(checked))
            speeds[model] = (sum(measured) / len(measured), run.finished_at, passed)
    return speeds
