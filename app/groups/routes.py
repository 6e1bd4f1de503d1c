"""The admin's group pages (/admin/groups): thin views over app.groups.services."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.admin.routes import admin_only
from app.extensions import db
from app.groups import bp, services
from app.groups.services import GroupRefused
from app.models import Group


@bp.before_request
@admin_only
def _admins_only() -> None:
    """Every page here is the admin's, a page added later too, whatever its method."""


def _group(group_id: int) -> Group:
    group = db.session.get(Group, group_id)
    if group is None:
        abort(404)
    return group


def _back(group: Group, section: str = ""):
    return redirect(url_for("groups.group", group_id=group.id, _anchor=section or None))


@bp.get("")
def index():
    """Every group: its members, models, directory group, knowledge bases and quotas."""
    return render_template("groups/index.html", overviews=services.overviews(), errors={}, typed={})


@bp.post("")
def create():
    """A new group, by name (members, models and the rest on its own page)."""
    try:
        group = services.save_group(None, _text("name"), _text("description"), _text("directory_group"))
    except GroupRefused as refused:
        page = render_template(
            "groups/index.html", overviews=services.overviews(), errors=refused.errors, typed=request.form
        )
        return page, 400
    flash(_("Group “%(name)s” created: add its members and models.", name=group.name), "success")
    return _back(group)


def group_page(group: Group, errors: dict | None = None, typed=None, status: int = 200):
    """The group's page, a form's mistakes shown on it (the quotas' form too: app.quotas)."""
    page = render_template(
        "groups/group.html",
        group=group,
        members=services.members_of(group),
        models=services.model_choices(group),
        collections=services.collection_choices(group),
        errors=errors or {},
        typed=typed or {},
    )
    return page, status


@bp.get("/<int:group_id>")
def group(group_id: int):
    """One group: what it is, who is in it, what its members use and read."""
    return group_page(_group(group_id))


@bp.post("/<int:group_id>")
def update(group_id: int):
    """A group's name, description and directory group."""
    group = _group(group_id)
    try:
        services.save_group(group, _text("name"), _text("description"), _text("directory_group"))
    except GroupRefused as refused:
        db.session.rollback()
        return group_page(group, refused.errors, request.form, 400)
    flash(_("Group “%(name)s” saved.", name=group.name), "success")
    return _back(group)


@bp.post("/<int:group_id>/delete")
def delete(group_id: int):
    """A group (its members keep their accounts)."""
    group = _group(group_id)
    name = group.name
    services.delete_group(group)
    flash(_("Group “%(name)s” deleted.", name=name), "success")
    return redirect(url_for("groups.index"))


@bp.post("/<int:group_id>/members")
def add_members(group_id: int):
    """Accounts added to the group by name."""
    group = _group(group_id)
    try:
        added = services.add_members(group, _text("members"))
    except GroupRefused as refused:
        return group_page(group, refused.errors, request.form, 400)
    if added:
        flash(_("Added to the group: %(names)s.", names=", ".join(added)), "success")
    else:
        flash(_("They were members already."), "success")
    return _back(group, "members")


@bp.post("/<int:group_id>/members/<int:user_id>/remove")
def remove_member(group_id: int, user_id: int):
    """An account taken out of the group (not one its directory group brought in)."""
    group = _group(group_id)
    try:
        user = services.remove_member(group, user_id)
    except LookupError:
        abort(404)
    except GroupRefused as refused:
        return group_page(group, refused.errors, status=400)
    flash(_("%(name)s is no longer in the group.", name=user.username), "success")
    return _back(group, "members")


@bp.post("/<int:group_id>/models")
def set_models(group_id: int):
    """The models the group's members use (kept from everyone outside the groups that list them)."""
    group = _group(group_id)
    return _choice(group, "models", services.set_models, _("Models of “%(name)s” saved.", name=group.name))


@bp.post("/<int:group_id>/collections")
def set_collections(group_id: int):
    """The knowledge bases the group's members read."""
    group = _group(group_id)
    saved = _("Knowledge bases of “%(name)s” saved.", name=group.name)
    return _choice(group, "collections", services.set_collections, saved)


def _choice(group: Group, field: str, save, saved: str):
    """A list of checkboxes of the group's page saved (`field`: its name, and its section's),
    or the page again with what is wrong."""
    try:
        save(group, request.form.getlist(field))
    except GroupRefused as refused:
        return group_page(group, refused.errors, status=400)
    flash(saved, "success")
    return _back(group, field)


def _text(name: str) -> str:
    value = request.form.get(name, "")
    return value if isinstance(value, str) else ""
