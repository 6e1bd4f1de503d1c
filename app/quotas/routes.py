"""What is left today (the composer's line, refreshed after each answer) and the admin's pages:
use against limits per group, a group's limits (its form is on the group's page), a person's."""

from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app import audit
from app.accounts import quotas
from app.extensions import db
from app.groups.routes import group_page
from app.models import Group, User
from app.quotas import bp, usage
from app.quotas.usage import QuotaRefused


@bp.before_request
def _admins_only_under_admin() -> None:
    """The /admin pages here are the admin's, whatever their method (OPTIONS too), a page added
    later included; /quota is everyone's own."""
    if request.path.startswith("/admin/") and not getattr(current_user, "is_admin", False):
        abort(403)


@bp.get("/quota")
def remaining():
    """The signed-in person's quotas and what is left of today's (JSON)."""
    return jsonify(quotas.remaining(current_user).as_dict())


@bp.get("/admin/quotas")
def overview():
    """Today's answers and tokens per group and per member, against their limits."""
    groups, loners = usage.groups_use()
    start, end = quotas.today()
    return render_template("quotas/overview.html", groups=groups, loners=loners, resets_at=end)


@bp.post("/admin/quotas/groups/<int:group_id>")
def group_limits(group_id: int):
    """A group's limits (the form on the group's page)."""
    group = db.session.get(Group, group_id) or abort(404)
    return _save_limits(
        group,
        "group.quota",
        group.name,
        on_refusal=lambda errors: group_page(group, errors, request.form, 400),
        back=url_for("groups.group", group_id=group.id, _anchor="quotas"),
    )


def _person_page(user: User, errors: dict | None = None, typed=None, status: int = 200):
    page = render_template(
        "quotas/person.html",
        person=user,
        use=usage.person_use(user, usage.used_today([user.id])),
        groups=quotas.groups_of(user),
        errors=errors or {},
        typed=typed,
    )
    return page, status


@bp.get("/admin/quotas/users/<int:user_id>")
def person(user_id: int):
    """One person's limits (their own over their groups'), and today's use."""
    return _person_page(db.session.get(User, user_id) or abort(404))


@bp.post("/admin/quotas/users/<int:user_id>")
def person_limits(user_id: int):
    """A person's own limits, over their groups'."""
    user = db.session.get(User, user_id) or abort(404)
    return _save_limits(
        user,
        "account.quota",
        user.username,
        on_refusal=lambda errors: _person_page(user, errors, request.form, 400),
        back=url_for("quotas.person", user_id=user.id),
    )


def _save_limits(holder: Group | User, action: str, name: str, *, on_refusal, back: str):
    """The limits' form sent for a group or a person: saved with its audit entry in one
    transaction, or its page again with the mistakes."""
    try:
        values = usage.parse(request.form)
    except QuotaRefused as refused:
        return on_refusal(refused.errors)
    audit.record(action, name, details=usage.set_limits(holder, values))
    db.session.commit()
    flash(_("The quotas of “%(name)s” are saved.", name=name), "success")
    return redirect(back)


bp.add_app_template_global(usage.labels, "quota_labels")  # the limits' names, as the forms say them


@bp.app_template_global()
def my_quota() -> quotas.Remaining | None:
    """The signed-in person's quotas and today's use, for the composer and Settings."""
    return quotas.remaining(current_user) if current_user.is_authenticated else None
