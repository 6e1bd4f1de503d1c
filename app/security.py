"""Login required by default, and the headers every response carries."""

from __future__ import annotations

from flask import Flask, request
from flask_login import current_user

# Scripts only from this server: no inline script, no on…= handler, nothing from outside.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",  # no <base>: every relative URL stays the app's
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# Endpoints open to visitors who are not logged in.
PUBLIC_ENDPOINTS = {
    "auth.login",
    "auth.register",
    "static",
    "auth.set_language",
    "health.liveness",
    "oidc.login",  # the way to the company's identity provider, and back from it
    "oidc.callback",
}
# Blueprints that authenticate each request themselves (API keys), never by the session cookie.
OWN_AUTHENTICATION = {"api", "openai"}


def init_app(app: Flask) -> None:
    from app.extensions import login_manager

    @app.before_request
    def require_login():
        if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
            return None  # None: a 404 is rendered by the error handler
        if request.blueprint in OWN_AUTHENTICATION:
            return None
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return None

    @app.after_request
    def security_headers(response):
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        # Pages and JSON hold conversations and accounts: no copy in the browser's cache or a
        # proxy's, for the next person at the computer to find.
        if response.mimetype in ("text/html", "application/json"):
            response.headers["Cache-Control"] = "no-store"
        return response
