"""Making and revoking API keys, from the Settings page (a signed-in session, CSRF-checked)."""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.answers.asking import field
from app.api import keys, keys_bp


@keys_bp.post("/settings/api-keys")
def create():
    """A new key, shown once on the page this answers with (never in a redirect's cookie)."""
    from app.settings.routes import _page

    name = " ".join(field("name").split())
    if not name or len(name) > keys.NAME_LENGTH:
        return _page(key_error=_("A key's name has 1 to %(max)d characters.", max=keys.NAME_LENGTH))
    _record, key = keys.create(current_user, name)
    return _page(new_key=key)


@keys_bp.post("/settings/api-keys/<int:key_id>/revoke")
def revoke(key_id: int):
    key = keys.owned(current_user, key_id)
    if key is None:
        abort(404)
    keys.revoke(key)
    flash(_("The key “%(name)s” is revoked.", name=key.name))
    return redirect(url_for("settings.index", _anchor="api-keys"))
