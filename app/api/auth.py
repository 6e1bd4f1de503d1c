"""Who calls the API: the owner of the Bearer key, nobody else."""

from __future__ import annotations

from flask import g, jsonify, request
from flask_babel import gettext as _

from app.api import bp, keys, openai_bp
from app.extensions import csrf

# Bearer keys, not cookies: no CSRF token to ask for (a cross-site page cannot set the header).
csrf.exempt(bp)
csrf.exempt(openai_bp)

PUBLIC = {"api.openapi"}  # the description of the API itself


def _key_from_header() -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def authenticate():
    """Before every API request: the key's user in `g.api_user`, or a 401."""
    if request.endpoint in PUBLIC:
        return None
    found = keys.user_for(_key_from_header())
    if found is None:
        message = _("A valid API key is needed: send it as “Authorization: Bearer <key>”.")
        if request.blueprint == "openai":
            body = {"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}}
        else:
            body = {"error": message, "status": 401}
        response = jsonify(body)
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="causerie"'
        return response
    if found[0].must_change_password:  # a password the admin saw: its owner chooses theirs first
        from app.auth.own_password import refusal

        if request.blueprint == "openai":
            code = "password_change_required"
            body = {"error": {"message": refusal(), "type": "invalid_request_error", "code": code}}
        else:
            body = {"error": refusal(), "status": 403}
        response = jsonify(body)
        response.status_code = 403
        return response
    g.api_user, g.api_key = found
    return None


bp.before_request(authenticate)
openai_bp.before_request(authenticate)
