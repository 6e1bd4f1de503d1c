"""An account made, or given a new password, by the admin signs in with a password the admin
saw: its owner chooses their own before anything else (ASVS 6.4.1: initial passwords are
changed at first use). Pages lead to the Password page; scripts and streams get a 403 saying
why; the API refuses the account's keys until then (app/api/auth.py)."""

from __future__ import annotations

from flask import redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.errors import render_error, wants_json

# What such an account may still do: choose the password, sign out, read the page in its language.
ALLOWED = {
    "auth.change_password",
    "auth.logout",
    "auth.set_language",
    "static",
    "brand.stylesheet",
    "brand.logo",
}
# Blueprints that authenticate each request themselves (API keys): refused there, with their kind of error.
OWN_AUTHENTICATION = {"api", "openai"}


def refusal() -> str:
    return _("Choose your own password first: the one you signed in with was given by the administrator.")


def require_own_password():
    """Before every request of a signed-in account that must change its password."""
    if request.endpoint in ALLOWED or request.endpoint is None or request.blueprint in OWN_AUTHENTICATION:
        return None
    if not current_user.is_authenticated or not current_user.must_change_password:
        return None
    if wants_json():
        return render_error(403, refusal())
    return redirect(url_for("auth.change_password"))
