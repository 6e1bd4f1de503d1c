"""How long a benchmark would take on this machine, from the runs it has already made, and the
smallest run the start form offers first (one click must not start minutes of work)."""

from __future__ import annotations

from app.bench.runs import START_CHOICES, THINKING_CHOICES, think_modes
from app.bench.suites import Suite
from app.extensions import db
from app.llm.catalogue import Entry
from app.models import BenchmarkResult, BenchmarkRun


def smallest_model(usable: list[Entry], default: Entry | None) -> Entry | None:
    """The lightest model (the fastest to load and to answer); the default one when no size is
    known."""
    sized = [e for e in usable if e.info.size_bytes]
    if sized:
        return min(sized, key=lambda e: e.info.size_bytes)
    return default if default in usable else (usable[0] if usable else None)


def shortest_suite(suites: dict[str, Suite]) -> Suite | None:
    """The suite whose answers are the shortest at most (then the one with fewest prompts)."""
    if not suites:
        return None
    return min(suites.values(), key=lambda s: (sum(p.max_tokens for p in s.prompts), len(s.prompts)))


def _measured(machine_label: str) -> dict[tuple, dict[str, float]]:
    """(start, model, think) -> {prompt id: mean seconds of its complete answers}, on this machine."""
    rows = db.session.execute(
        db.select(
            BenchmarkRun.start,
            BenchmarkResult.model,
            BenchmarkResult.think,
            BenchmarkResult.prompt_id,
            db.func.avg(BenchmarkResult.total_seconds),
        )
        .join(BenchmarkRun, BenchmarkResult.run_id == BenchmarkRun.id)
        .where(
            BenchmarkRun.machine_label == machine_label,
            BenchmarkRun.source != "import",  # another server's figures say nothing of this one
            BenchmarkResult.outcome == "complete",
            BenchmarkResult.total_seconds.is_not(None),
        )
        .group_by(BenchmarkRun.start, BenchmarkResult.model, BenchmarkResult.think, BenchmarkResult.prompt_id)
    )
    measured: dict[tuple, dict[str, float]] = {}
    for start, model, think, prompt_id, seconds in rows:
        measured.setdefault((start, model, think), {})[prompt_id] = float(seconds)
    return measured


def pass_seconds(suites: dict[str, Suite], entries: list[Entry], machine_label: str) -> dict:
    """suite -> start -> thinking -> model -> seconds one repetition takes here (every prompt,
    every thinking switch), or None when a prompt was never answered so here. The start form's
    script adds up the models ticked and multiplies by the repetitions."""
    measured = _measured(machine_label)
    table: dict = {}
    for suite in suites.values():
        for start in START_CHOICES:
            for thinking in THINKING_CHOICES:
                row = table.setdefault(suite.id, {}).setdefault(start, {}).setdefault(thinking, {})
                for entry in entries:
                    row[entry.id] = _one_pass(suite, measured, start, entry, thinking)
    return table


def _one_pass(suite: Suite, measured: dict, start: str, entry: Entry, thinking: str) -> float | None:
    total = 0.0
    for think in think_modes(thinking, entry):
        seconds = measured.get((start, entry.id, think), {})
        if any(p.id not in seconds for p in suite.prompts):
            return None
        total += sum(seconds[p.id] for p in suite.prompts)
    return round(total, 1)


def run_seconds(table: dict, suite_id: str, start: str, thinking: str, models: list[str], repetitions: int):
    """The whole run's seconds, or None when one of its models has no past measure here."""
    row = table.get(suite_id, {}).get(start, {}).get(thinking, {})
    passes = [row.get(model) for model in models]
    if not passes or None in passes:
        return None
    return sum(passes) * repetitions
