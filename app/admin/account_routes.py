"""The admin's hands on accounts: make one (a one-time password shown once), delete one (after
a page saying what goes), export one person's data for a data request."""

from __future__ import annotations

import json
import logging

from flask import Response, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.utils import secure_filename

from app import audit
from app.admin import bp, erasure, export, users
from app.admin.forms import NewAccountForm
from app.admin.routes import admin_only, users_page
from app.answers import registry
from app.auth.services import UsernameTaken
from app.extensions import db
from app.models import User, utcnow

security_log = logging.getLogger("causerie.security")


def _account(user_id: int) -> User:
    account = db.session.get(User, user_id)
    if account is None:
        abort(404)
    return account


@bp.post("/users/new")
@admin_only
def create_user():
    """A local account, whatever the registration mode; its one-time password on this answer
    alone (a POST's page: not in any URL, gone on reload, never stored in clear)."""
    form = NewAccountForm()
    if form.validate_on_submit():
        username = form.username.data.strip()
        try:
            account, password = users.create_account(
                username, admin=form.is_admin.data, manages_knowledge=form.manages_knowledge.data
            )
        except UsernameTaken:
            form.username.errors.append(_("This username, or one that looks the same, is taken."))
        else:
            security_log.info("admin %r: created %r", current_user.username, account.username)
            return render_template("admin/one_time_password.html", account=account, password=password), 201
    return users_page(new_account=form), 400


@bp.get("/users/<int:user_id>/delete")
@admin_only
def confirm_delete(user_id: int):
    """What deleting this account erases and what it keeps, before anything goes."""
    account = _account(user_id)
    if account.id == current_user.id:
        flash(_("You cannot delete your own account: another administrator can."), "error")
        return redirect(url_for("admin.users_page"))
    return render_template("admin/delete_user.html", account=account, erasure=erasure.what_goes(account))


@bp.post("/users/<int:user_id>/delete")
@admin_only
def delete_user(user_id: int):
    """Erase the account and what is theirs; the audit log keeps what they did."""
    account = _account(user_id)
    name = account.username
    admin = current_user._get_current_object()
    if account.id == admin.id:
        flash(_("You cannot delete your own account: another administrator can."), "error")
        return redirect(url_for("admin.users_page"))
    # Their answers being written end first: they would save into messages about to go.
    answers = registry().of_user(account.id)
    registry().end_sessions_of(account.id)
    for live in answers:
        live.ended.wait(3)
    try:
        erasure.delete_account(account, admin)
    except users.LastAdmin:
        flash(_("%(name)s is the last active administrator: make another one first.", name=name), "error")
    else:
        security_log.info("admin %r: deleted %r", admin.username, name)
        flash(_("The account of %(name)s and their data are deleted.", name=name))
    return redirect(url_for("admin.users_page"))


@bp.post("/users/<int:user_id>/export")
@admin_only
def export_user(user_id: int):
    """One person's data as a JSON file, for a data request."""
    account = _account(user_id)
    data = export.export(account, current_user._get_current_object())
    audit.record("account.export", account.username)
    db.session.commit()
    security_log.info("admin %r: exported %r", current_user.username, account.username)
    name = secure_filename(account.username) or "account"
    filename = f"causerie-{account.id}-{name}-{utcnow():%Y%m%d}.json"
    return Response(
        json.dumps(data, ensure_ascii=False, indent=2),
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
