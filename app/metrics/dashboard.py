"""The admin's figures per model, for a period, from the Generation records."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models import Document, Generation, Message

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
OUTCOMES = ("complete", "stopped", "disconnected", "interrupted", "error")


def percentile(values: list[float], fraction: float) -> float | None:
    """The value below which `fraction` of them lie (nearest rank); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def _known(rows, name: str) -> list[float]:
    return [getattr(r, name) for r in rows if getattr(r, name) is not None]


@dataclass
class ModelFigures:
    model: str
    engine: str
    answers: int
    first_token_p50: float | None
    first_token_p95: float | None
    total_p50: float | None
    total_p95: float | None
    tokens_per_second_median: float | None
    cpu_mean: float | None  # % of the machine's cores, mean over the answers' means
    cpu_peak: float | None
    memory_peak: int | None  # bytes, resident memory of the process doing the work
    error_rate: float
    stop_rate: float  # stopped or closed by the user
    outcomes: dict[str, int] = field(default_factory=dict)
    together_median: float | None = None  # answers written in one batch with each answer
    together_max: int | None = None
    cached_share_median: float | None = None  # of each answer's prompt, taken from the cache


def records(since: datetime, alone_only: bool = False) -> list[Generation]:
    """The records of the period, oldest first; `alone_only`: those written alone in their
    engine (their speed is the model's own, not a batch's share)."""
    query = sa.select(Generation).where(Generation.created_at >= since).order_by(Generation.id)
    if alone_only:
        query = query.where(Generation.concurrent <= 1)
    return list(db.session.scalars(query))


def figures(rows: list[Generation]) -> list[ModelFigures]:
    by_model: dict[str, list[Generation]] = defaultdict(list)
    for row in rows:
        by_model[row.model].append(row)
    result = []
    for model, mine in sorted(by_model.items()):
        outcomes = {name: sum(r.outcome == name for r in mine) for name in OUTCOMES}
        first, total = _known(mine, "first_token_seconds"), _known(mine, "total_seconds")
        speed = _known(mine, "tokens_per_second")
        cpu_peaks, memory = _known(mine, "process_cpu_percent_peak"), _known(mine, "process_rss_peak_bytes")
        cpu_means = _known(mine, "process_cpu_percent_mean")
        together = _known(mine, "concurrent")
        cached = [
            (r.cached_prompt_tokens or 0) / r.prompt_tokens
            for r in mine
            if r.prompt_tokens and r.cached_prompt_tokens is not None
        ]
        result.append(
            ModelFigures(
                model=model,
                engine=mine[-1].engine,
                answers=len(mine),
                first_token_p50=percentile(first, 0.5),
                first_token_p95=percentile(first, 0.95),
                total_p50=percentile(total, 0.5),
                total_p95=percentile(total, 0.95),
                tokens_per_second_median=statistics.median(speed) if speed else None,
                cpu_mean=statistics.fmean(cpu_means) if cpu_means else None,
                cpu_peak=max(cpu_peaks) if cpu_peaks else None,
                memory_peak=max(memory) if memory else None,
                error_rate=outcomes["error"] / len(mine),
                stop_rate=(outcomes["stopped"] + outcomes["disconnected"]) / len(mine),
                outcomes=outcomes,
                together_median=statistics.median(together) if together else None,
                together_max=int(max(together)) if together else None,
                cached_share_median=statistics.median(cached) if cached else None,
            )
        )
    return result


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def with_documents(row: Generation) -> bool:
    """An answer to a question that drew on documents (its passages were looked for)."""
    return row.passages is not None


@dataclass(frozen=True)
class DocumentsCost:
    """Per model, what documents cost its answers' first token: medians over the period."""

    model: str
    answers: int  # with documents
    first_token_with: float | None
    first_token_without: float | None
    wait: float | None  # for the question's documents to be indexed
    retrieval: float | None
    passages: float | None
    passage_tokens: float | None


def documents_costs(rows: list[Generation]) -> list[DocumentsCost]:
    """The models whose answers drew on documents in the period, their first token beside the
    same model's answers without documents: what the passages cost to read."""
    by_model: dict[str, list[Generation]] = defaultdict(list)
    for row in rows:
        by_model[row.model].append(row)
    result = []
    for model, mine in sorted(by_model.items()):
        drew = [r for r in mine if with_documents(r)]
        if not drew:
            continue
        plain = [r for r in mine if not with_documents(r)]
        result.append(
            DocumentsCost(
                model=model,
                answers=len(drew),
                first_token_with=_median(_known(drew, "first_token_seconds")),
                first_token_without=_median(_known(plain, "first_token_seconds")),
                wait=_median(_known(drew, "documents_wait_seconds")),
                retrieval=_median(_known(drew, "retrieval_seconds")),
                passages=_median(_known(drew, "passages")),
                passage_tokens=_median(_known(drew, "passage_tokens")),
            )
        )
    return result


def answers_with_documents(rows: list[Generation], limit: int = 20) -> list[Generation]:
    """The period's latest answers that drew on documents, newest first."""
    return [row for row in reversed(rows) if with_documents(row)][:limit]


@dataclass(frozen=True)
class Indexing:
    """The documents indexed in the period, and those that could not be."""

    documents: int
    pages: int
    pages_per_second: float | None  # the median document's
    passages: int
    errors: int


def indexing(since: datetime) -> Indexing:
    indexed = db.session.execute(
        sa.select(Document.pages, Document.chunks, Document.index_seconds).where(
            Document.state == "ready", Document.indexed_at >= since
        )
    ).all()
    errors = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Document)
        .where(Document.state == "error", Document.created_at >= since)
    )
    rates = [row.pages / row.index_seconds for row in indexed if row.pages and row.index_seconds]
    return Indexing(
        documents=len(indexed),
        pages=sum(row.pages or 0 for row in indexed),
        pages_per_second=_median(rates),
        passages=sum(row.chunks for row in indexed),
        errors=errors or 0,
    )


@dataclass(frozen=True)
class Ratings:
    model: str
    up: int
    down: int

    @property
    def share_up(self) -> float:
        return self.up / (self.up + self.down)


def ratings(since: datetime) -> list[Ratings]:
    """Thumbs up and down that users gave the answers of the period, per model."""
    up = sa.func.sum(sa.case((Message.feedback > 0, 1), else_=0))
    down = sa.func.sum(sa.case((Message.feedback < 0, 1), else_=0))
    query = (
        sa.select(Message.model, up, down)
        .where(Message.role == "assistant", Message.feedback.is_not(None), Message.created_at >= since)
        .group_by(Message.model)
        .order_by(Message.model)
    )
    return [Ratings(model, int(ups), int(downs)) for model, ups, downs in db.session.execute(query)]


def series(
    rows: list[Generation],
    measure: str = "first_token_seconds",
    combine: Callable[[list[float]], float] = statistics.median,
    slices: int = 24,
) -> dict[str, list[tuple[datetime, float]]]:
    """`measure` per model, combined per slice of the time between the first and the last
    record (not the whole period: the chart spans what happened), for the charts over time."""
    known = [row for row in rows if getattr(row, measure) is not None]
    if not known:
        return {}
    start = min(row.created_at for row in known)
    width = (max(row.created_at for row in known) - start) / slices or timedelta(seconds=1)
    found: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in known:
        found[row.model][min(slices - 1, int((row.created_at - start) / width))].append(getattr(row, measure))
    return {
        model: [(start + width * (part + 0.5), combine(values)) for part, values in sorted(by_slice.items())]
        for model, by_slice in found.items()
    }


CSV_COLUMNS = [column.name for column in Generation.__table__.columns]


def spreadsheet_safe(value):
    """A CSV cell: a text starting like a formula would be run by a spreadsheet, so it stays text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def as_csv_rows(rows: list[Generation]) -> list[list]:
    return [[spreadsheet_safe(getattr(row, name)) for name in CSV_COLUMNS] for row in rows]
