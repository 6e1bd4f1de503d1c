"""What the benchmark pages show: a run's figures per model and prompt, a summary per model,
and the comparison across models and machines."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _

from app.bench.runs import RunState
from app.extensions import db
from app.llm.catalogue import Entry
from app.models import BenchmarkResult, BenchmarkRun, utcnow


def _mean(values) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _peak(values) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


@dataclass
class Group:
    """Results that share a model, a thinking switch and maybe a prompt: their repetitions."""

    model: str
    think: bool | None
    results: list[BenchmarkResult]
    prompt_name: str = ""

    def mean(self, name: str) -> float | None:
        return _mean(getattr(r, name) for r in self.results)

    def peak(self, name: str) -> float | None:
        return _peak(getattr(r, name) for r in self.results)

    @property
    def checked(self) -> int:
        return sum(r.passed is not None for r in self.results)

    @property
    def passed(self) -> int:
        return sum(bool(r.passed) for r in self.results)

    @property
    def retrieved(self) -> int:
        """Answers of a documents suite: asked with passages searched for them."""
        return sum("retrieval" in (r.check or {}) for r in self.results)

    @property
    def recalled(self) -> int:
        """Of those, the answers whose passage was among the 5 found (recall@5's numerator)."""
        return sum(bool((r.check or {}).get("retrieval", {}).get("found")) for r in self.results)

    @property
    def failed_answers(self) -> int:
        return sum(r.outcome != "complete" for r in self.results)

    @property
    def scores(self) -> list[int]:
        return [r.judge_score for r in self.results if r.judge_score is not None]

    @property
    def unscored(self) -> int:
        """Answers the judge was asked about whose reply held no score."""
        return sum(r.judge_score is None and bool(r.judge_reply) for r in self.results)

    @property
    def prompts_measured(self) -> int:
        """How many of the suite's prompts this group timed: fewer than the suite's in a run
        cut short, whose time is then not a whole pass."""
        return len({r.prompt_id for r in self.results if r.total_seconds is not None})

    @property
    def time(self) -> float | None:
        """The time one pass over the prompts takes: the mean time of each prompt, added up."""
        by_prompt: dict[str, list] = {}
        for r in self.results:
            by_prompt.setdefault(r.prompt_id, []).append(r.total_seconds)
        means = [_mean(values) for values in by_prompt.values()]
        return sum(means) if means and None not in means else None


def by_prompt(run: BenchmarkRun) -> list[Group]:
    """One row per model, thinking switch and prompt, in the order they ran."""
    groups: dict[tuple, Group] = {}
    for r in run.results:
        key = (r.model, r.think, r.prompt_id)
        groups.setdefault(key, Group(r.model, r.think, [], r.prompt_name)).results.append(r)
    return list(groups.values())


def by_model(run: BenchmarkRun) -> list[Group]:
    """One row per model and thinking switch: the admin's table (size, time, OK, CPU, RAM)."""
    groups: dict[tuple, Group] = {}
    for r in run.results:
        groups.setdefault((r.model, r.think), Group(r.model, r.think, [])).results.append(r)
    return list(groups.values())


def thinkers(run: BenchmarkRun, entries: dict[str, Entry]) -> list[str]:
    """The run's models that can think, for which its thinking switch means something: those
    with an answer asked with thinking on or off, or, before any answer, the reasoning models
    of the catalogue."""
    asked = {r.model for r in run.results if r.think is not None}
    known = {r.model for r in run.results}
    return [
        m for m in run.models if m in asked or (m not in known and m in entries and entries[m].info.thinking)
    ]


def ran_seconds(run: BenchmarkRun) -> float | None:
    """How long the run ran (queued time left out); None before it started."""
    if run.started_at is None:
        return None
    end = run.finished_at or utcnow()
    return max(0.0, (end - run.started_at).total_seconds())


@dataclass(frozen=True)
class Bar:
    label: str
    tokens_per_second: float | None
    time: float | None
    model: str = ""  # its colour, the same as on the dashboard


COMPARED_RUNS = 200  # the newest finished runs of a suite that the chart looks through


def comparison(suite_id: str) -> list[Bar]:
    """For one suite: each model on each machine (warm and cold apart), from the newest
    finished run that measured it."""
    runs = db.session.scalars(
        db.select(BenchmarkRun)
        .where(BenchmarkRun.suite_id == suite_id, BenchmarkRun.state == RunState.DONE.value)
        .order_by(BenchmarkRun.finished_at.desc(), BenchmarkRun.id.desc())
        .limit(COMPARED_RUNS)
    )
    bars: dict[tuple, Bar] = {}
    for run in runs:
        machine = run.machine or {}
        where = (run.machine_label, machine.get("cpu_model"), machine.get("memory_bytes"))
        for group in by_model(run):
            key = (group.model, group.think, run.start, where)
            speed = group.mean("tokens_per_second")
            if key in bars or speed is None:  # a run where the model only failed says nothing
                continue
            think = {True: " · " + _("thinking"), False: " · " + _("no thinking"), None: ""}[group.think]
            cold = " · " + _("cold start") if run.start == "cold" else ""
            bars[key] = Bar(
                f"{group.model}{think}{cold} · {run.machine_label}", speed, group.time, group.model
            )
    return sorted(bars.values(), key=lambda bar: bar.label)


def suites_run() -> list[tuple[str, str]]:
    """(id, name) of every suite some finished run used, for the chart's picker."""
    rows = db.session.execute(
        db.select(BenchmarkRun.suite_id, BenchmarkRun.suite_name)
        .where(BenchmarkRun.state == RunState.DONE.value)
        .distinct()
    )
    return sorted({(suite_id, name) for suite_id, name in rows})
