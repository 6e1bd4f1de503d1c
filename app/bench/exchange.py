"""Runs out and in: CSV and JSON exports, and the import of another server's JSON export.

The JSON export is the exchange format: each run with its suite, its machine and every result,
answers included. An import checks every field before anything is stored, so a damaged or
foreign file adds nothing, and says what is wrong; a run already here is not imported twice.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy.exc import SQLAlchemyError

from app.audit import record
from app.bench import checks
from app.bench.runs import START_CHOICES, THINKING_CHOICES
from app.bench.suites import Suite, SuiteError
from app.extensions import db
from app.metrics.dashboard import spreadsheet_safe
from app.models import BenchmarkResult, BenchmarkRun, utcnow

FORMAT = "causerie-benchmark"
VERSION = 1

RUN_FIELDS = {  # exported and imported, with their types
    "uid": str,
    "source": str,
    "state": str,
    "suite_id": str,
    "suite_name": str,
    "models": list,
    "repetitions": int,
    "start": str,
    "thinking": str,
    "judge_model": str,
    "machine": dict,
    "machine_label": str,
    "steps_total": int,
    "steps_done": int,
    "error": str,
}
RUN_TIMES = ("created_at", "started_at", "finished_at")
RESULT_TEXTS = (
    "model",
    "engine",
    "engine_version",
    "prompt_id",
    "prompt_name",
    "outcome",
    "error",
    "answer",
    "thinking_text",
    "finish_reason",
    "judge_reason",
    "judge_reply",
)
RESULT_NUMBERS = (
    "queue_seconds",
    "load_seconds",
    "first_token_seconds",
    "thinking_seconds",
    "total_seconds",
    "tokens_per_second",
    "cpu_percent_mean",
    "cpu_percent_peak",
    "memory_percent_peak",
)
RESULT_INTEGERS = (
    "concurrent",
    "repetition",
    "threads",
    "context",
    "prompt_tokens",
    "completion_tokens",
    "thinking_tokens",
    "memory_peak_bytes",
    "model_memory_bytes",
    "judge_score",
)
RESULT_FLAGS = ("think", "passed")
TEXT_LIMIT = 200_000  # characters in an unbounded text field (an answer): far more than any answer
LARGEST = 2**53  # integers beyond are no measurement, and overflow the database's columns
# A machine's description: what the pages show of it, and the type each must have.
MACHINE_FIELDS = {
    "hostname": str,
    "cpu_model": str,
    "architecture": str,
    "os": str,
    "python": str,
    "sockets": int,
    "physical_cores": int,
    "logical_cores": int,
    "memory_bytes": int,
}
FINISHED = ("done", "cancelled", "failed", "interrupted")


class ImportProblem(ValueError):
    """Why a file cannot be imported, in the admin's language."""


# -- out ------------------------------------------------------------------------------------
def _time(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


def run_as_dict(run: BenchmarkRun) -> dict:
    data = {name: getattr(run, name) for name in RUN_FIELDS}
    data.update({name: _time(getattr(run, name)) for name in RUN_TIMES})
    data["suite"] = run.suite
    data["results"] = [result_as_dict(r) for r in run.results]
    return data


def result_as_dict(result: BenchmarkResult) -> dict:
    names = RESULT_TEXTS + RESULT_NUMBERS + RESULT_INTEGERS + RESULT_FLAGS
    return {name: getattr(result, name) for name in names} | {"check": result.check}


def as_json(runs: list[BenchmarkRun]) -> str:
    document = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": _time(utcnow()),
        "runs": [run_as_dict(run) for run in runs],
    }
    return json.dumps(document, ensure_ascii=False, indent=1)


CSV_COLUMNS = (
    ["run_uid", "machine", "cpu_model", "logical_cores", "memory_bytes", "suite_id", "start"]
    + list(RESULT_TEXTS[:6])
    + ["repetition", "think", "passed", "check_note"]
    + list(RESULT_NUMBERS)
    + [n for n in RESULT_INTEGERS if n != "repetition"]
    + ["finish_reason", "judge_reason", "answer"]
)


def as_csv(runs: list[BenchmarkRun]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for run in runs:
        machine = run.machine or {}
        for result in run.results:
            row = {
                "run_uid": run.uid,
                "machine": run.machine_label,
                "cpu_model": machine.get("cpu_model"),
                "logical_cores": machine.get("logical_cores"),
                "memory_bytes": machine.get("memory_bytes"),
                "suite_id": run.suite_id,
                "start": run.start,
                "check_note": checks.describe(result.check) if result.check else "",
            }
            writer.writerow(
                [spreadsheet_safe(row[c] if c in row else getattr(result, c)) for c in CSV_COLUMNS]
            )
    return out.getvalue()


# -- in -------------------------------------------------------------------------------------
def import_runs(raw: bytes) -> tuple[list[BenchmarkRun], int]:
    """Store the runs of a JSON export that are not here yet; returns them and how many were
    here already. Raises ImportProblem (nothing stored) when any part of it is wrong, or when
    nothing in it is new."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ImportProblem(
            _("This file is not JSON: export the results as JSON on the other server.")
        ) from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ImportProblem(_("This file is not a benchmark export of this application."))
    if document.get("version") != VERSION:
        raise ImportProblem(
            _(
                "This export's version (%(version)s) is not one this server reads.",
                version=document.get("version"),
            )
        )
    runs = document.get("runs")
    if not isinstance(runs, list) or not runs:
        raise ImportProblem(_("This export holds no runs."))
    built = [_run(data, index) for index, data in enumerate(runs, start=1)]
    uids = [run.uid for run in built]
    if len(set(uids)) != len(uids):
        raise ImportProblem(_("This export holds the same run twice."))
    # An export of everything holds runs this server made or imported before: those are skipped.
    known = set(db.session.scalars(db.select(BenchmarkRun.uid).where(BenchmarkRun.uid.in_(uids))))
    new = [run for run in built if run.uid not in known]
    if not new:
        raise ImportProblem(_("These results were imported already (or come from this server)."))
    db.session.add_all(new)
    machines = sorted({run.machine_label for run in new})
    record("benchmark.import", ", ".join(machines), details={"runs": len(new)})
    try:
        db.session.commit()
    except SQLAlchemyError as exc:  # whatever slipped through the checks: refused, not a 500
        db.session.rollback()
        raise ImportProblem(
            _("This export could not be stored: %(error)s", error=type(exc).__name__)
        ) from exc
    return new, len(built) - len(new)


def _problem(where: str, field: str) -> ImportProblem:
    return ImportProblem(_("%(where)s: the field “%(field)s” is missing or wrong.", where=where, field=field))


def _checked(value, kind, where: str, name: str, optional: bool = False, limit: int = TEXT_LIMIT):
    if value is None and optional:
        return None
    if kind is float:
        ok = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and 0 <= value <= LARGEST
        )
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= LARGEST
    elif kind is str:
        ok = isinstance(value, str) and len(value) <= limit
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise _problem(where, name)
    return value


def _datetime(value, where: str, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value).removesuffix("Z")).replace(tzinfo=None)
    except ValueError as exc:
        raise _problem(where, name) from exc


def _limit(table, name: str) -> int:
    """A text column's length in the database, or the limit of unbounded texts."""
    return getattr(table.__table__.c[name].type, "length", None) or TEXT_LIMIT


def _machine(data, where: str) -> dict:
    if not isinstance(data, dict):
        raise _problem(where, "machine")
    machine = {}
    for name, kind in MACHINE_FIELDS.items():
        machine[name] = _checked(data.get(name), kind, where, f"machine.{name}", optional=True, limit=500)
    engines = data.get("engines") or []
    if not isinstance(engines, list) or not all(isinstance(e, dict) for e in engines):
        raise _problem(where, "machine.engines")
    machine["engines"] = [
        {
            "engine": _checked(e.get("engine", ""), str, where, "machine.engines", limit=200),
            "version": _checked(e.get("version", ""), str, where, "machine.engines", limit=100),
            "reachable": _checked(e.get("reachable", True), bool, where, "machine.engines"),
        }
        for e in engines
    ]
    return machine


def _run(data, index: int) -> BenchmarkRun:
    where = _("Run %(number)d", number=index)
    if not isinstance(data, dict):
        raise _problem(where, "run")
    values = {
        name: _checked(data.get(name), kind, where, name, limit=_limit(BenchmarkRun, name))
        for name, kind in RUN_FIELDS.items()
        if name != "machine"
    }
    values["machine"] = _machine(data.get("machine"), where)
    if not all(isinstance(m, str) and len(m) <= 200 for m in values["models"]):
        raise _problem(where, "models")
    if values["start"] not in START_CHOICES:
        raise _problem(where, "start")
    if values["thinking"] not in THINKING_CHOICES:
        raise _problem(where, "thinking")
    if values["state"] not in FINISHED:  # exported mid-run: it will never end here
        values["state"] = "interrupted"
    try:
        suite = Suite.from_dict(_checked(data.get("suite"), dict, where, "suite"))
    except SuiteError as exc:
        raise _problem(where, "suite") from exc
    results = _checked(data.get("results"), list, where, "results")
    run = BenchmarkRun(
        **values,
        suite=suite.as_dict(),
        **{name: _datetime(data.get(name), where, name) for name in RUN_TIMES},
    )
    run.source = "import"  # whatever it was there: here, it was imported
    run.results = [_result(item, where, number) for number, item in enumerate(results, start=1)]
    return run


def _result(data, run_where: str, index: int) -> BenchmarkResult:
    where = _("%(run)s, result %(number)d", run=run_where, number=index)
    if not isinstance(data, dict):
        raise _problem(where, "result")
    values = {
        name: _checked(data.get(name, ""), str, where, name, limit=_limit(BenchmarkResult, name))
        for name in RESULT_TEXTS
    }
    for name in RESULT_NUMBERS:
        values[name] = _checked(data.get(name), float, where, name, optional=True)
    for name in RESULT_INTEGERS:
        values[name] = _checked(data.get(name), int, where, name, optional=True)
    for name in RESULT_FLAGS:
        values[name] = _checked(data.get(name), bool, where, name, optional=True)
    check = data.get("check") or {}
    if not isinstance(check, dict) or not isinstance(check.get("note", ""), str):
        raise _problem(where, "check")
    if not isinstance(check.get("values", {}), dict) or len(json.dumps(check)) > 10_000:
        raise _problem(where, "check")
    if values["judge_score"] is not None and not 1 <= values["judge_score"] <= 10:
        raise _problem(where, "judge_score")
    if values["repetition"] is None:
        raise _problem(where, "repetition")
    values["concurrent"] = values["concurrent"] or 1  # exports older than the column
    return BenchmarkResult(**values, check=check)
