"""The admin's audit log page: filter, pages, CSV export, retention."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, stream_with_context, url_for
from flask_babel import format_date, format_time, ngettext
from flask_babel import gettext as _

from app.admin.routes import admin_only
from app.audit import log
from app.errors.inputs import whole_number
from app.models import utcnow

bp = Blueprint("audit", __name__, url_prefix="/admin/audit")


@bp.before_app_request
def _retention() -> None:
    """Entries older than the retention go once a day (see app.audit.log)."""
    if request.endpoint != "static":
        log.apply_retention_daily()


@bp.before_request
@admin_only
def _admins_only() -> None:
    """Every page here is the admin's, a page added later too, whatever its method."""


def _when(moment) -> str:
    """An entry's time to the second, in the reader's time zone, in digits in their language's
    order ("07/12/2026 14:08:28"; 24-hour in English too: no word outside the catalogue)."""
    return f"{format_date(moment, 'short')} {format_time(moment, 'HH:mm:ss')}"


@bp.get("")
def index():
    """The log, newest first, as the filter keeps it; a filter not understood says why (400)."""
    found = log.Filter.from_args(request.args)
    page = log.page_of(found)
    return render_template(
        "audit/index.html",
        found=found,
        page=page,
        kinds=log.kinds(),
        families=log.families(),
        label=log.label,
        family_label=log.family_label,
        changes=log.changes,
        when=_when,
        retention=log.retention_days(),
        retention_max=log.RETENTION_MAX_DAYS,
    ), (400 if found.errors else 200)


@bp.get("/export.csv")
def export():
    """Every entry the filter keeps, as CSV; a filter not understood gets the page and why."""
    found = log.Filter.from_args(request.args)
    if found.errors:
        return index()
    name = f"causerie-audit-{utcnow():%Y%m%d-%H%M}.csv"
    return Response(
        stream_with_context(log.csv_lines(found)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.post("/retention")
def retention():
    """How many days entries are kept (0: forever); older ones go at once."""
    days = whole_number(request.form.get("days", "").strip(), log.RETENTION_MAX_DAYS)
    if days is None:
        flash(
            _(
                "Keep entries for a whole number of days, from 0 (forever) to %(max)s.",
                max=log.RETENTION_MAX_DAYS,
            ),
            "error",
        )
        return redirect(url_for("audit.index"))
    deleted = log.set_retention(days)
    if days == 0:
        flash(_("Audit entries are kept forever."), "success")
    else:
        kept = ngettext("Audit entries are kept %(num)d day.", "Audit entries are kept %(num)d days.", days)
        if deleted:
            kept += " " + ngettext(
                "%(num)d older entry was deleted.", "%(num)d older entries were deleted.", deleted
            )
        flash(kept, "success")
    return redirect(url_for("audit.index"))
