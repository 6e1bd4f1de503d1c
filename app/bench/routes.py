"""The benchmark pages (the admin's): start a run, watch it, read it, export, import, compare,
and see which models this server can serve."""

from __future__ import annotations

from pathlib import Path

from flask import Response, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.admin.routes import admin_only
from app.audit import record
from app.bench import bp, checks, estimate, exchange, fit, machine, report, runs
from app.bench.forms import BenchmarkForm
from app.bench.suites import Suite, SuiteError, load_suite
from app.errors import render_error
from app.extensions import db
from app.formatting import seconds, speed
from app.llm import services as llm
from app.metrics import charts
from app.models import BenchmarkRun, utcnow

HISTORY = 100  # runs listed on the page


@bp.before_request
@admin_only
def _admins_only() -> None:
    """Every benchmark page is the admin's: a benchmark holds the server's cores for minutes."""


def runner() -> runs.BenchmarkRunner:
    return current_app.extensions["bench"]


def available_suites() -> tuple[dict[str, Suite], list[str]]:
    """The suites in the suites folder, read anew each time (a file added shows at once), and
    what is wrong with those that cannot be read."""
    suites, problems = {}, []
    for path in sorted(Path(current_app.config["BENCH_SUITES_DIR"]).glob("*.toml")):
        try:
            suite = load_suite(path)
        except SuiteError as exc:
            problems.append(str(exc))
            continue
        suites[suite.id] = suite
    return suites, problems


def _owned_run(run_id: int) -> BenchmarkRun:
    run = db.session.get(BenchmarkRun, run_id)
    if run is None:
        abort(404)
    return run


def _form() -> BenchmarkForm:
    suites, _problems = available_suites()
    usable = [e.id for e in llm().catalogue.entries() if e.info.usable]
    return BenchmarkForm().fill(suites, usable)


@bp.get("")
def index():
    """Start a run; the runs so far; the comparison across models and machines; the fit."""
    form = _form()
    if not form.is_submitted():
        # The smallest run first: one click must not start minutes of work on the server.
        catalogue = llm().catalogue
        usable = [e for e in catalogue.entries() if e.info.usable]
        smallest = estimate.smallest_model(usable, catalogue.default(usable))
        suite = estimate.shortest_suite(form.suites)
        form.models.data = [smallest.id] if smallest else []
        form.suite.data = suite.id if suite else None
    return _index(form)


def _index(form: BenchmarkForm, status: int = 200):
    catalogue = llm().catalogue
    entries = catalogue.entries()
    _suites, problems = available_suites()
    history = db.session.scalars(
        db.select(BenchmarkRun)
        .order_by(BenchmarkRun.created_at.desc(), BenchmarkRun.id.desc())
        .limit(HISTORY)
    ).all()
    suites_run = report.suites_run()
    chart_suite = request.args.get("suite") or (suites_run[0][0] if suites_run else "")
    bars = report.comparison(chart_suite) if chart_suite else []
    models = [b.model for b in bars]
    colours = charts.palette([e.id for e in entries], models)
    here = machine.describe([])
    remote = {e.name for e in catalogue.engines if getattr(e, "local", True) is False}
    usable = [e for e in entries if e.info.usable]
    durations = estimate.pass_seconds(form.suites, usable, machine.label(here))
    return render_template(
        "bench/index.html",
        form=form,
        suite_problems=problems,
        history=history,
        unfinished=[r for r in history if r.state in runs.UNFINISHED],
        suites_run=suites_run,
        chart_suite=chart_suite,
        speed_chart=charts.bar_chart(
            [(b.label, b.tokens_per_second) for b in bars], _("Tokens per second"), speed, colours, models
        )
        if bars
        else None,
        time_chart=charts.bar_chart(
            [(b.label, b.time) for b in bars], _("Time for the suite"), seconds, colours, models
        )
        if bars
        else None,
        fits=fit.fits(entries, here, remote),
        machine=here,
        durations=durations,
        expected_seconds=estimate.run_seconds(
            durations,
            form.suite.data,
            form.start.data,
            form.thinking.data,
            list(form.models.data or []),
            form.repetitions.data if isinstance(form.repetitions.data, int) else 1,
        ),
    ), status


@bp.post("")
def start():
    """Queue a run with the admin's choices; it starts when the runs before it end."""
    form = _form()
    if not form.validate_on_submit():
        return _index(form, 400)
    entries = {e.id: e for e in llm().catalogue.entries()}
    plan = form.plan()
    # Committed with the run (create_run's transaction): a benchmark holds the cores for minutes.
    record("benchmark.start", plan.suite.name, details={"models": list(plan.models)})
    run = runs.create_run(plan, entries, source="page", user_id=current_user.id)
    runner().enqueue(run.id)
    flash(_("The benchmark is queued: it runs in the background, chat goes on meanwhile."))
    return redirect(url_for("bench.run_page", run_id=run.id))


@bp.get("/runs/<int:run_id>")
def run_page(run_id: int):
    """One run: its progress, its figures per model and per prompt, the answers, the machine."""
    run = _owned_run(run_id)
    entries = {e.id: e for e in llm().catalogue.entries()}
    return render_template(
        "bench/run.html",
        run=run,
        models=report.by_model(run),
        prompts=report.by_prompt(run),
        prompt_texts={p["id"]: p.get("text", "") for p in (run.suite or {}).get("prompts", [])},
        suite_size=len((run.suite or {}).get("prompts", [])),
        thinkers=report.thinkers(run, entries),
        ran_seconds=report.ran_seconds(run),
        sizes={model_id: e.info.size_bytes for model_id, e in entries.items()},
        progress=_progress(run),
        describe_check=checks.describe,
        unfinished=run.state in runs.UNFINISHED,
    )


def _progress(run: BenchmarkRun) -> dict:
    return {
        "id": run.id,
        "state": run.state,
        "done": run.steps_done,
        "total": run.steps_total,
        "percent": round(100 * run.steps_done / run.steps_total) if run.steps_total else 0,
        "current": runner().live(run.id),
        "finished": run.state not in runs.UNFINISHED,
        "machine_known": bool(run.machine),  # described when the run starts
    }


@bp.get("/runs/<int:run_id>/progress")
def progress(run_id: int):
    """How far a run is, and the step it is on (the run page asks every second)."""
    return jsonify(_progress(_owned_run(run_id)))


@bp.post("/runs/<int:run_id>/cancel")
def cancel(run_id: int):
    """Stop a run: its current answer is stopped at once; the results so far are kept."""
    run = _owned_run(run_id)
    if run.state not in runs.UNFINISHED:
        flash(_("This benchmark had already ended."), "error")
    else:
        record("benchmark.cancel", run.suite_name, details={"run": run.id})
        db.session.commit()
        ours = runner().cancel(run.id)
        if ours == "queued" and not runs.cancel_queued(run.id):
            runner().cancel(run.id)  # it started meanwhile: stopped like a running one
        if ours:
            flash(_("The benchmark is cancelled; the results measured so far are kept."))
        else:
            # Not this server's: a command-line run (stop it there), or one whose process died.
            runs.mark_interrupted(run.id)
            flash(
                _(
                    "This benchmark was not running in this server (a command-line run, or one left by a "
                    "stopped process): it is marked interrupted, its results so far are kept."
                )
            )
    return redirect(url_for("bench.run_page", run_id=run.id))


@bp.post("/runs/<int:run_id>/delete")
def delete(run_id: int):
    run = _owned_run(run_id)
    if run.state in runs.UNFINISHED:
        flash(_("Cancel the benchmark before deleting it."), "error")
        return redirect(url_for("bench.run_page", run_id=run.id))
    db.session.delete(run)
    record("benchmark.delete", run.suite_name, details={"run": run.id})
    db.session.commit()
    flash(_("The benchmark was deleted."))
    return redirect(url_for("bench.index"))


def _download(body: str, mimetype: str, name: str) -> Response:
    return Response(
        body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@bp.get("/runs/<int:run_id>.<any(csv, json):kind>")
def export_run(run_id: int, kind: str):
    """One run's results, as CSV (a line per answer) or JSON (the exchange format)."""
    run = _owned_run(run_id)
    name = f"causerie-benchmark-{run.id}-{run.created_at:%Y%m%d-%H%M}.{kind}"
    if kind == "csv":
        return _download(exchange.as_csv([run]), "text/csv", name)
    return _download(exchange.as_json([run]), "application/json", name)


@bp.get("/export.<any(csv, json):kind>")
def export_all(kind: str):
    """Every finished run, for another server's import or a spreadsheet."""
    history = db.session.scalars(
        db.select(BenchmarkRun)
        .where(BenchmarkRun.state.not_in([s.value for s in runs.UNFINISHED]))
        .order_by(BenchmarkRun.created_at)
    ).all()
    name = f"causerie-benchmarks-{utcnow():%Y%m%d-%H%M}.{kind}"
    if kind == "csv":
        return _download(exchange.as_csv(history), "text/csv", name)
    return _download(exchange.as_json(history), "application/json", name)


@bp.post("/import")
def import_results():
    """Add the runs of another server's JSON export to the history and the charts."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash(_("Choose the JSON file exported by the other server."), "error")
        return redirect(url_for("bench.index"))
    try:
        imported, known = exchange.import_runs(upload.read())
    except exchange.ImportProblem as exc:
        flash(str(exc), "error")
        return redirect(url_for("bench.index"))
    labels = ", ".join(sorted({run.machine_label for run in imported}))
    flash(_("%(count)d benchmark(s) imported, from %(machines)s.", count=len(imported), machines=labels))
    if known:
        flash(_("%(count)d benchmark(s) of the file were here already: left as they were.", count=known))
    return redirect(url_for("bench.index"))


@bp.errorhandler(413)
def too_large(_error):
    """An upload over the request limit (MAX_CONTENT_LENGTH): said on the page, not a bare 413."""
    if request.endpoint == "bench.import_results":
        limit = current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
        flash(
            _("This file is over %(mb)d MB: export the runs one at a time on the other server.", mb=limit),
            "error",
        )
        return redirect(url_for("bench.index"))
    return render_error(413)
