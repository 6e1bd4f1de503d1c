"""`flask bench`: the benchmark without a browser, stored like the page's runs.

`flask bench run` refuses while the server runs on the same instance folder: it would start
engines of its own (the same model's memory twice, two decodes on the same cores measuring
each other); the Benchmarks page uses the server's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from app.bench import exchange, runs
from app.bench.suites import SuiteError, load_suite, load_suites
from app.extensions import db
from app.models import BenchmarkRun

bench = AppGroup("bench", help="Benchmark models on this machine (the page's benchmarks, headless).")


def _suites() -> dict:
    try:
        return load_suites(Path(current_app.config["BENCH_SUITES_DIR"]))
    except SuiteError as exc:
        raise click.ClickException(str(exc)) from exc


@bench.command("suites")
def list_suites() -> None:
    """The suites available, with their prompts."""
    for suite in _suites().values():
        click.echo(f"{suite.id}: {suite.name} — {len(suite.prompts)} prompts")
        for prompt in suite.prompts:
            click.echo(f"    {prompt.id}: {prompt.name} (check: {prompt.check.get('kind', '—')})")


@bench.command("run")
@click.option(
    "--suite", "suite_name", required=True, help="A suite's id (see `flask bench suites`) or a TOML file."
)
@click.option("--models", required=True, help="Model ids, comma-separated (see the admin's Models page).")
@click.option("--repetitions", default=1, show_default=True, type=click.IntRange(1, 10))
@click.option("--start", type=click.Choice(runs.START_CHOICES), default="warm", show_default=True)
@click.option("--thinking", type=click.Choice(runs.THINKING_CHOICES), default="both", show_default=True)
@click.option("--judge", default="", help="A model that scores each answer from 1 to 10 (optional).")
def run_benchmark(
    suite_name: str, models: str, repetitions: int, start: str, thinking: str, judge: str
) -> None:
    """Run a suite on some models; the results go to the history, as from the page."""
    from app.instance_lock import InstanceBusy, hold

    try:
        lock = hold(current_app.config["INSTANCE_DIR"], "flask bench run")  # noqa: F841 - held until the end
    except InstanceBusy as busy:
        raise click.ClickException(
            f"The server is running ({busy.holder}): run the benchmark from its Benchmarks page, which "
            "uses the server's own engines, or stop the server first."
        ) from None
    suites = _suites()
    if suite_name in suites:
        suite = suites[suite_name]
    elif Path(suite_name).is_file():
        try:
            suite = load_suite(Path(suite_name))
        except SuiteError as exc:
            raise click.ClickException(str(exc)) from exc
    else:
        raise click.ClickException(
            f"No suite {suite_name!r}: pick one of {', '.join(suites)}, or give a file."
        )
    entries = {e.id: e for e in current_app.extensions["llm"].catalogue.entries()}
    wanted = [m.strip() for m in models.split(",") if m.strip()]
    unusable = [
        m for m in wanted + ([judge] if judge else []) if m not in entries or not entries[m].info.usable
    ]
    if not wanted or unusable:
        usable = ", ".join(e.id for e in entries.values() if e.info.usable)
        raise click.ClickException(
            f"Not available: {', '.join(unusable) or '(none given)'}. Installed: {usable}"
        )
    plan = runs.Plan(suite, list(dict.fromkeys(wanted)), repetitions, start, thinking, judge)
    run = runs.create_run(plan, entries, source="cli", user_id=None)
    click.echo(f"Benchmark {run.id}: suite {suite.id}, {run.steps_total} steps, start {start}.")
    run = current_app.extensions["bench"].execute(run.id, report=click.echo)
    click.echo(f"Benchmark {run.id}: {run.state} on {run.machine_label}.")
    _print_table(run, {model_id: entry.info.size_bytes for model_id, entry in entries.items()})
    if run.state != runs.RunState.DONE.value:
        sys.exit(1)


def _print_table(run: BenchmarkRun, sizes: dict[str, int]) -> None:
    """The admin's usual table: model, size, time, OK, CPU, RAM, and tokens/s."""
    from app.bench.report import by_model

    click.echo(f"{'Model':<40} {'Size':>8} {'Time':>9} {'OK':>6} {'CPU':>6} {'RAM':>15} {'tok/s':>7}")
    for group in by_model(run):
        think = {True: " +think", False: " -think", None: ""}[group.think]
        time = group.time
        memory = group.peak("memory_peak_bytes")
        percent = group.peak("memory_percent_peak")
        cpu = group.mean("cpu_percent_mean")
        speed = group.mean("tokens_per_second")
        size = sizes.get(group.model)
        ram = f"{memory / 1e9:.2f} GB" if memory else "—"
        if percent is not None:
            ram += f" {percent:.0f} %"
        click.echo(
            f"{(group.model + think)[:40]:<40} "
            f"{f'{size / 1e9:.2f} GB' if size else '—':>8} "
            f"{f'{time:.1f} s' if time is not None else '—':>9} "
            f"{f'{group.passed}/{group.checked}':>6} "
            f"{f'{cpu:.0f} %' if cpu is not None else '—':>6} "
            f"{ram:>15} "
            f"{f'{speed:.1f}' if speed else '—':>7}"
        )


@bench.command("list")
def list_runs() -> None:
    """The runs stored, newest first."""
    for run in db.session.scalars(db.select(BenchmarkRun).order_by(BenchmarkRun.id.desc())):
        click.echo(
            f"{run.id:>4} {run.created_at:%Y-%m-%d %H:%M} {run.source:<6} {run.state:<11} "
            f"{run.suite_id:<12} {', '.join(run.models)} · {run.machine_label}"
        )


@bench.command("export")
@click.argument("run_ids", nargs=-1, type=int)
@click.option("--format", "kind", type=click.Choice(["json", "csv"]), default="json", show_default=True)
def export(run_ids: tuple[int, ...], kind: str) -> None:
    """Print runs (all finished ones when none is named) as JSON or CSV."""
    query = db.select(BenchmarkRun).order_by(BenchmarkRun.id)
    if run_ids:
        query = query.where(BenchmarkRun.id.in_(run_ids))
    else:
        query = query.where(BenchmarkRun.state.not_in([s.value for s in runs.UNFINISHED]))
    found = db.session.scalars(query).all()
    click.echo(exchange.as_json(found) if kind == "json" else exchange.as_csv(found), nl=False)


@bench.command("import")
@click.argument("file", type=click.File("rb"))
def import_file(file) -> None:
    """Add another server's JSON export to the history."""
    try:
        imported, known = exchange.import_runs(file.read())
    except exchange.ImportProblem as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{len(imported)} run(s) imported; {known} already here.")
