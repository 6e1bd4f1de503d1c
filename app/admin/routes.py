"""The admin's pages."""

from __future__ import annotations

from functools import wraps

from flask import abort, render_template
from flask_login import current_user

from app.admin import bp
from app.llm import services as llm


def admin_only(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


@bp.get("/models")
@admin_only
def models():
    """Every model found, whether it can be used, and why not."""
    catalogue = llm().catalogue
    default = catalogue.default()
    return render_template(
        "admin/models.html",
        models=catalogue.models(),
        default_id=default.id if default else None,
        configured_default=catalogue.default_model,
    )
