"""One way to answer an error: a page in the app's look, or JSON for scripts and streams."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)
API_PATHS = ("/api/", "/v1/")


def wants_json() -> bool:
    """Scripts, fetch() calls and event streams get JSON, never an HTML page or a redirect."""
    accept = request.accept_mimetypes
    return (
        request.path.startswith(API_PATHS)  # whatever it asks, an API's client reads JSON
        or request.is_json
        or accept.best == "application/json"
        or "text/event-stream" in request.headers.get("Accept", "")
        or request.headers.get("X-Requested-With") == "fetch"
    )


def _messages() -> dict[int, str]:
    return {
        400: _("The request could not be understood."),
        401: _("Please sign in."),
        403: _("You are not allowed to do this."),
        404: _("This page does not exist."),
        405: _("This action is not allowed here."),
        413: _("The request is too large."),
        429: _("Too many requests. Please wait a moment."),
        500: _("Something went wrong on the server. Please try again."),
        503: _("The server is busy. Please try again in a moment."),
    }


def render_error(code: int, message: str | None = None):
    known = _messages()
    message = message or known.get(code) or known[400 if code < 500 else 500]
    if wants_json():
        return jsonify(error=message, status=code), code
    template = f"errors/{code}.html" if code in (403, 404, 500) else "errors/error.html"
    return render_template(template, code=code, message=message), code


def init_app(app: Flask) -> None:
    from app.errors import inputs
    from app.extensions import login_manager

    inputs.init_app(app)

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_error(400, _("Your session has expired. Reload the page and try again."))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return render_error(error.code or 500)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        log.exception("unhandled error", exc_info=error)
        # A write that failed leaves the session unusable: the error page reads the account too.
        from app.extensions import db

        db.session.rollback()
        return render_error(InternalServerError.code)

    @login_manager.unauthorized_handler
    def unauthorized():
        if wants_json():
            return render_error(401)
        from flask import redirect, url_for

        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
