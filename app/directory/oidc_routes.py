"""Sign in with the company's OpenID Connect provider: off to its login page, back with a code."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app import audit
from app.auth.forms import LoginForm
from app.auth.routes import safe_next, start_session, unusable_name_message
from app.directory import oidc
from app.directory.accounts import (
    DisabledInDirectory,
    NameClash,
    RegistrationClosed,
    UnusableName,
    account_for,
)
from app.extensions import db

bp = Blueprint("oidc", __name__, url_prefix="/auth/oidc")
security_log = logging.getLogger("causerie.security")
NEXT = "oidc_next"  # the page asked for, kept through the provider's pages


@bp.before_request
def _configured() -> None:
    if not oidc.enabled():
        abort(404)


def _refused(notice: str, status: int):
    """The sign-in page again, saying why (local accounts may still sign in there)."""
    return render_template("auth/login.html", form=LoginForm(formdata=None), notice=notice), status


@bp.get("/login")
def login():
    """Off to the provider's login page; back at the callback."""
    if current_user.is_authenticated:
        return redirect(url_for("chat.index"))
    session[NEXT] = safe_next(url_for("chat.index"))
    try:
        return oidc.login_redirect()
    except oidc.CertificateRefused:
        return _refused(_certificate_message(), 502)
    except oidc.ProviderUnreachable:
        return _refused(_unreachable_message(), 502)


@bp.get("/callback")
def callback():
    """The provider's answer: the person signed in, their account made or brought in step."""
    try:
        person, token = oidc.finish_login()
    except oidc.LoginExpired:
        return _refused(_("This sign-in has expired or was already used: start again."), 400)
    except oidc.ProviderRefused as refusal:
        if refusal.error == "access_denied":
            return _refused(_("Sign-in cancelled at the identity provider."), 401)
        return _refused(_("The identity provider refused the sign-in (%(error)s).", error=refusal.error), 401)
    except oidc.CertificateRefused:
        return _refused(_certificate_message(), 502)
    except oidc.ProviderUnreachable:
        return _refused(_unreachable_message(), 502)
    except oidc.AnswerRejected:
        return _refused(
            _(
                "The identity provider's answer could not be verified: the administrator will find why "
                "in the server's log."
            ),
            502,
        )
    except oidc.MissingClaim as missing:
        return _refused(
            _(
                "The identity provider did not say who you are (no %(claim)s): the administrator must "
                "check OIDC_USERNAME_CLAIM.",
                claim=missing.claim,
            ),
            502,
        )
    try:
        user = account_for(person)
    except UnusableName:
        return _refused(unusable_name_message(), 403)
    except NameClash:
        return _refused(
            _(
                "The name %(name)s belongs to another account here: the administrator has been told "
                "and must settle it.",
                name=person.username,
            ),
            409,
        )
    except RegistrationClosed:
        return _refused(
            _("No new account may be made here: ask the administrator to open registration."), 403
        )
    except DisabledInDirectory:
        return _refused(_("This account is disabled. Ask the administrator."), 403)
    return _signed_in(user, token)


def _signed_in(user, token: dict):
    if user.disabled:  # by the admin here, whatever the provider says
        audit.record(
            "signin.fail", user.username, actor=None, details={"reason": "disabled", "source": "oidc"}
        )
        db.session.commit()
        return _refused(_("This account is disabled. Ask the administrator."), 403)
    if user.pending:
        audit.record(
            "signin.fail", user.username, actor=None, details={"reason": "pending", "source": "oidc"}
        )
        db.session.commit()
        return _refused(_("Your account is waiting for the administrator's approval."), 403)
    oidc.keep_tokens(user, token)
    audit.record("signin.ok", user.username, actor=user, details={"source": "oidc"})
    db.session.commit()
    security_log.info("signed in with OIDC: %r from %s", user.username, request.remote_addr)
    target = session.pop(NEXT, None) or url_for("chat.index")
    start_session(user)
    return redirect(target)


def _unreachable_message() -> str:
    return _(
        "%(provider)s cannot be reached: try again in a moment, or sign in with a local account.",
        provider=current_app.config["OIDC_PROVIDER_NAME"],
    )


def _certificate_message() -> str:
    return _(
        "The certificate of %(provider)s is not trusted by this server: the administrator must check "
        "OIDC_CA_FILE.",
        provider=current_app.config["OIDC_PROVIDER_NAME"],
    )
