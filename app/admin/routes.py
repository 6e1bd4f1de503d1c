"""The admin's pages: which models users get and with which settings, the dashboard, the accounts."""

from __future__ import annotations

import csv
import io
import logging
import time
from functools import wraps

from flask import Response, abort, flash, jsonify, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.accounts.access import groups_using
from app.admin import bp, services, serving, users
from app.admin.forms import ModelSettingsForm, NewAccountForm
from app.answers import registry
from app.audit import record
from app.errors import render_error
from app.extensions import db
from app.formatting import percent, seconds, speed
from app.llm import services as llm
from app.metrics import charts, dashboard
from app.metrics import live as machine
from app.models import User, utcnow

security_log = logging.getLogger("causerie.security")


def admin_only(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


@bp.before_request
@admin_only
def _admins_only() -> None:
    """Every page here is the admin's, a page added later too, whatever its method."""


def _back(model_id: str = ""):
    """Back to the Models page, at the model's row: the admin sees what changed where they were."""
    return redirect(url_for("admin.models", _anchor=row_anchor(model_id) if model_id else None))


def row_anchor(model_id: str) -> str:
    return f"model-{model_id}"


@bp.get("/models")
@admin_only
def models():
    """Every model of every engine, what it is, whether users get it, and the engines' state."""
    catalogue = llm().catalogue
    entries = catalogue.entries()
    found = {entry.id for entry in entries}
    default = catalogue.default([e for e in entries if e.offered])
    return render_template(
        "admin/models.html",
        entries=entries,
        statuses=catalogue.statuses(),
        # Answers (running, waiting) per engine: how the load spreads over several hosts.
        occupancy=llm().scheduler.occupancy(),
        clock=lambda moment: time.strftime("%H:%M:%S", time.localtime(moment)),  # a time.time()
        # Set up once, now gone from every engine: its conversations stay readable.
        missing=[model_id for model_id in services.configured_models() if model_id not in found],
        default_id=default.id if default else None,
        wanted_default=services.load_preferences().default_model or catalogue.default_model,
        answers=serving.answers_under_way(),
        serving=serving.serving_settings(),
        row_anchor=row_anchor,
        kept_for=groups_using([e.id for e in entries]),  # who may use each model
    )


@bp.route("/models/settings", methods=["GET", "POST"])
@admin_only
def model_settings():
    """One model's settings: offered or not, system prompt, sampling, context, threads, thinking."""
    model_id = request.values.get("model", "")
    entry = llm().catalogue.entry(model_id)
    if entry is None and model_id not in services.configured_models():
        abort(404)
    prefs = entry.prefs if entry else services.load_preferences().models[model_id]
    form = ModelSettingsForm() if request.method == "POST" else ModelSettingsForm.for_model(model_id, prefs)
    if form.validate_on_submit():
        if form.model.data != model_id:
            abort(400)
        services.save_model_settings(model_id, **form.preferences())
        flash(_("Settings of “%(model)s” saved: they apply to the next message.", model=model_id))
        return _back(model_id)
    status = 400 if request.method == "POST" else 200
    kept_for = groups_using([model_id]).get(model_id, [])
    page = render_template(
        "admin/model_settings.html", form=form, entry=entry, model_id=model_id, kept_for=kept_for
    )
    return page, status


@bp.post("/models/default")
@admin_only
def set_default():
    """The model a new conversation gets."""
    entry = llm().catalogue.entry(request.form.get("model", ""))
    if entry is None or not entry.offered:
        flash(_("Only a model offered to users can be the default."), "error")
    else:
        services.set_default_model(entry.id)
        flash(_("“%(model)s” is now the default model.", model=entry.id))
    return _back(entry.id if entry else "")


@bp.post("/models/enabled")
@admin_only
def set_enabled():
    """Offer a model to users, or stop offering it (its conversations stay readable)."""
    model_id = request.form.get("model", "")
    if llm().catalogue.entry(model_id) is None and model_id not in services.configured_models():
        abort(404)
    enabled = request.form.get("enabled") == "1"
    services.set_enabled(model_id, enabled)
    if enabled:
        flash(_("“%(model)s” is offered to users again.", model=model_id))
    else:
        flash(_("“%(model)s” is no longer offered to users.", model=model_id))
    return _back(model_id)


@bp.post("/models/unload")
@admin_only
def unload():
    """Free a loaded model's memory now; the next message that needs it loads it again."""
    model_id = request.form.get("model", "")
    if llm().catalogue.unload(model_id):
        # Nothing stored changes, but someone's answer may now wait for a load: who did it.
        record("model.unload", model_id)
        db.session.commit()
        flash(_("“%(model)s” was unloaded.", model=model_id))
    else:
        message = _(
            "“%(model)s” could not be unloaded: it is not loaded, or it is answering.", model=model_id
        )
        flash(message, "error")
    return _back(model_id)


def _period():
    """The period asked for (`?period=24h|7d|30d`), as (name, start); 400 for another."""
    name = request.args.get("period", "7d")
    if name not in dashboard.PERIODS:
        abort(make_response(*render_error(400, _("Pick a period: 24h, 7d or 30d."))))
    return name, utcnow() - dashboard.PERIODS[name]


def _live() -> dict:
    now = machine.read()
    return {
        "cpu_percent": now.cpu_percent,
        "memory_used": now.memory_used,
        "memory_total": now.memory_total,
        "loaded": [
            {"model": e.id, "engine": e.info.engine, "memory": e.info.memory_bytes}
            for e in llm().catalogue.entries()
            if e.info.loaded
        ],
        "chart": machine.chart(machine.recent()),
    }


def _charts(rows: list, models: list[dashboard.ModelFigures]) -> dict:
    """The dashboard's charts, each model in its colour everywhere."""
    colours = charts.palette([e.id for e in llm().catalogue.entries()], [m.model for m in models])
    memory = dashboard.series(rows, "process_rss_peak_bytes", max)
    return {
        "colours": colours,
        "over_time": charts.line_chart(
            dashboard.series(rows), _("Median time to first token"), _("s"), colours
        ),
        "memory_over_time": charts.line_chart(
            {model: [(at, value / 1e9) for at, value in points] for model, points in memory.items()},
            _("Memory of the process doing the work, peak"),
            _("GB"),
            colours,
        ),
        "first_token_bars": charts.bar_chart(
            [(m.model, m.first_token_p50) for m in models], _("Time to first token, median"), seconds, colours
        ),
        "speed_bars": charts.bar_chart(
            [(m.model, m.tokens_per_second_median) for m in models],
            _("Tokens per second, median"),
            speed,
            colours,
        ),
        "cpu_bars": charts.bar_chart(
            [(m.model, m.cpu_mean) for m in models], _("CPU, mean"), percent, colours
        ),
    }


@bp.get("/dashboard")
@admin_only
def dashboard_page():
    """Per model, for a period: answers, waits, speed, CPU, memory, errors and stops; what
    documents cost; charts; now."""
    period, since = _period()
    alone_only = request.args.get("alone") == "1"
    rows = dashboard.records(since, alone_only)
    models = dashboard.figures(rows)
    return render_template(
        "admin/dashboard.html",
        period=period,
        periods=list(dashboard.PERIODS),
        alone_only=alone_only,
        models=models,
        ratings=dashboard.ratings(since),
        documents_costs=dashboard.documents_costs(rows),
        document_answers=dashboard.answers_with_documents(rows),
        indexing=dashboard.indexing(since),
        live=_live(),
        live_colours=machine.COLOURS,
        **_charts(rows, models),
    )


@bp.get("/dashboard.csv")
@admin_only
def dashboard_csv():
    """The raw records of the period, one line per answer."""
    period, since = _period()
    rows = dashboard.records(since, alone_only=request.args.get("alone") == "1")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(dashboard.CSV_COLUMNS)
    writer.writerows(dashboard.as_csv_rows(rows))
    filename = f"causerie-generations-{period}-{utcnow():%Y%m%d-%H%M}.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/live")
@admin_only
def live():
    """The machine's CPU and memory now, and the loaded models (the dashboard refreshes it)."""
    return jsonify(_live())


@bp.get("/users")
@admin_only
def users_page(temporary: tuple[str, str] | None = None, new_account: NewAccountForm | None = None):
    """Every account (or those waiting for approval: `?show=pending`), who may register, a form
    to make an account, the directory sign-ins refused for a name, and what the admin can do."""
    accounts = users.accounts()
    pending_only = request.args.get("show") == "pending"
    return render_template(
        "admin/users.html",
        accounts=[a for a in accounts if a.pending] if pending_only else accounts,
        pending_only=pending_only,
        look_alikes=users.look_alikes(accounts),
        mode=users.registration_mode(),
        modes=users.REGISTRATION_MODES,
        temporary=temporary,
        new_account=new_account or NewAccountForm(formdata=None),
        name_clashes=users.name_clashes(),
        source_of=users.source_of,
    )


@bp.post("/users/registration")
@admin_only
def set_registration():
    mode = request.form.get("mode", "")
    if mode not in users.REGISTRATION_MODES:
        flash(_("Registration is open, by approval, or closed."), "error")
    else:
        users.set_registration_mode(mode)
        security_log.info("admin %r: registration %s", current_user.username, mode)
        flash(_("Registration is now: %(mode)s.", mode=_registration_names()[mode]))
    return redirect(url_for("admin.users_page"))


def _registration_names() -> dict[str, str]:
    return {"open": _("open"), "approval": _("by approval"), "closed": _("closed")}


@bp.post("/users/<int:user_id>/knowledge")
@admin_only
def user_knowledge(user_id: int):
    """Let an account manage the knowledge bases, or no longer."""
    account = db.session.get(User, user_id)
    if account is None:
        abort(404)
    value = request.form.get("manages_knowledge", "")
    if value not in ("on", "off"):
        flash(_("Say whether this account may manage the knowledge bases."), "error")
        return redirect(url_for("admin.users_page"))
    users.set_manages_knowledge(account, value == "on")
    security_log.info("admin %r: %r manages knowledge: %s", current_user.username, account.username, value)
    flash(
        _("%(name)s can now manage the knowledge bases.", name=account.username)
        if value == "on"
        else _("%(name)s no longer manages the knowledge bases.", name=account.username)
    )
    return redirect(url_for("admin.users_page"))


@bp.post("/users/<int:user_id>/<any(approve, disable, enable, promote, demote, password):action>")
@admin_only
def user_action(user_id: int, action: str):
    """Approve, disable or enable, promote or demote an account, or give it a new password."""
    account = db.session.get(User, user_id)
    if account is None:
        abort(404)
    admin = current_user._get_current_object()
    name = account.username
    security_log.info("admin %r: %s %r", admin.username, action, name)
    try:
        if action == "approve":
            users.approve(account)
            flash(_("%(name)s can now sign in.", name=name))
        elif action in ("disable", "enable"):
            users.set_disabled(account, action == "disable", admin)
            if action == "disable":
                registry().end_sessions_of(account.id)
            flash(
                _("%(name)s is disabled: signed out everywhere.", name=name)
                if action == "disable"
                else _("%(name)s can sign in again.", name=name)
            )
        elif action in ("promote", "demote"):
            users.set_admin(account, action == "promote", admin)
            flash(
                _("%(name)s is now an administrator.", name=name)
                if action == "promote"
                else _("%(name)s is no longer an administrator.", name=name)
            )
        else:
            # Shown once, on this page, to the admin who hands it over: never stored in clear.
            temporary = users.reset_password(account, admin)
            registry().end_sessions_of(account.id)
            return users_page(temporary=(name, temporary))
    except users.LastAdmin:
        flash(_("%(name)s is the last active administrator: make another one first.", name=name), "error")
    except users.OwnAccount:
        flash(
            _("You cannot disable, demote or reset your own account here: another administrator can."),
            "error",
        )
    except users.DirectoryAccount:
        message = _(
            "%(name)s signs in with the directory's password: it changes in the directory, not here.",
            name=name,
        )
        flash(message, "error")
    return redirect(url_for("admin.users_page"))
