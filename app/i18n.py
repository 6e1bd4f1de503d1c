"""Which language a page speaks: the signed-in user's choice (kept in their account, so on every
device), else this browser's choice, else the browser's language, else French (also the language
of what is said outside a request: `flask bench`, the background threads)."""

from __future__ import annotations

import zoneinfo
from functools import cache
from urllib.parse import unquote

from flask import Flask, current_app, g, has_request_context, request, session
from flask_login import current_user

TIMEZONE_COOKIE = "tz"


def select_locale() -> str:
    if not has_request_context():
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    languages = current_app.config["LANGUAGES"]
    for chosen in (_account_language(), session.get("lang")):
        if chosen in languages:
            return chosen
    return request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]


def select_timezone() -> str | None:
    """The reader's time zone, as their browser names it (app.js keeps it in the `tz` cookie);
    None (the configured default, UTC) when unknown or not a zone this server knows."""
    if not has_request_context():
        return None
    # app.js writes it with encodeURIComponent ("Europe%2FParis"); cookies are not decoded.
    name = unquote(request.cookies.get(TIMEZONE_COOKIE, ""))
    return name if name in _known_zones() else None


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _account_language() -> str:
    api_user = g.get("api_user")  # a script's key speaks for its owner (the API takes no cookie)
    if api_user is not None:
        return api_user.language
    return current_user.language if current_user.is_authenticated else ""


def init_app(app: Flask) -> None:
    from flask_babel import get_locale

    @app.context_processor
    def inject_locale() -> dict:
        return {"current_locale": str(get_locale()), "languages": app.config["LANGUAGES"]}
