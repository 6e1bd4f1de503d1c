"""How long a session lasts: it ends after SESSION_IDLE_MINUTES without a request, and
SESSION_MAX_DAYS after its sign-in whatever happens (ASVS 7.3.1, 7.3.2).

The times live in the signed session cookie, written by the server only. Ending every session
of an account at once (sign-out, new password, disabled) is the account's token's job
(`User.session_token`, part of every session's identity).
"""

from __future__ import annotations

import time

from flask import Flask, current_app, flash, request, session
from flask_babel import gettext as _
from flask_login import current_user, logout_user

SIGNED_IN_AT = "signed_in_at"
SEEN_AT = "seen_at"
REMEMBERED = "stay_signed_in"


def begin(remember: bool) -> None:
    """Start the clocks of a session just signed in. "Stay signed in": the session's cookie
    outlives the browser and no idle limit applies, only the absolute one — kept in the session
    itself, so no cookie can outlast it (a remember-me cookie restarting the clock could)."""
    now = time.time()
    session[SIGNED_IN_AT] = session[SEEN_AT] = now
    session[REMEMBERED] = remember
    session.permanent = remember


def end() -> None:
    """Sign this browser out (the account's other sessions are left alone)."""
    language = session.get("lang")
    session.clear()
    logout_user()
    if language:
        session["lang"] = language


def init_app(app: Flask) -> None:
    @app.before_request
    def enforce_time_limits() -> None:
        if request.endpoint == "static" or not current_user.is_authenticated:
            return  # a stylesheet neither loads the account nor ends a session
        now = time.time()
        config = current_app.config
        signed_in_at = session.get(SIGNED_IN_AT)
        if signed_in_at is None:  # a session without its clocks (signed in before they were kept)
            end()
            flash(_("Your session has expired: sign in again."), "error")
            return
        idle = now - session.get(SEEN_AT, signed_in_at) > config["SESSION_IDLE_MINUTES"] * 60
        too_old = now - signed_in_at > config["SESSION_MAX_DAYS"] * 86400
        if too_old or (idle and not session.get(REMEMBERED)):
            end()
            flash(_("Your session has expired: sign in again."), "error")
            return
        if now - session.get(SEEN_AT, 0) > 60:  # a cookie rewritten once a minute, not per request
            session[SEEN_AT] = now
