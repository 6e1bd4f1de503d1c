"""Register, log in, log out, pick a language."""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_user
from markupsafe import Markup

from app.admin import users
from app.answers import registry
from app.api import keys
from app.audit import record
from app.auth import bp, sessions, throttle
from app.auth.forms import ChangePasswordForm, LoginForm, RegisterForm
from app.auth.services import (
    HashingBusy,
    RegistrationClosed,
    UsernameTaken,
    authenticate,
    create_user,
    hash_password,
    sign_in,
)
from app.directory import accounts as directory_accounts
from app.directory import recheck
from app.directory.accounts import DirectoryRefusal, DirectoryUnreachable
from app.directory.settings import directory_enabled
from app.errors import render_error
from app.extensions import db, login_manager
from app.models import User
from app.settings.services import choose_language

# Who signed in, failed or was throttled, from where; never a password (ASVS 16.3).
security_log = logging.getLogger("causerie.security")


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """The account of a session: "<id>:<token>"; a session from before the account's token
    changed (signed out everywhere, new password, disabled) is no session at all, nor is one
    of an account disabled or not approved. A directory account is checked with its directory
    again every DIRECTORY_RECHECK_MINUTES: disabled or gone there, out here."""
    user_id, _, token = session_id.partition(":")
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    if user is None or not token or not secrets.compare_digest(token, user.session_token):
        return None
    if not user.is_active:  # disabled, or waiting for approval
        return None
    return user if recheck.still_allowed(user) else None


def start_session(user: User, remember: bool = False) -> None:
    """A fresh session at sign-in, whatever was there before, but for the language: the one the
    account chose (on any device), else the one this browser chose."""
    language = user.language or session.get("lang")
    session.clear()
    if language:
        session["lang"] = language
    login_user(user)  # no remember-me cookie: "Stay signed in" is a permanent session (sessions.py)
    sessions.begin(remember)


def _sign_in_failed(username: str, reason: str) -> None:
    """A refused sign-in in the audit log, under the name as typed. A wrong password and an
    unknown name are the same entry ("password"): the log says nothing the sign-in page would
    not. "disabled" and "pending" are told only after the right password, as the page does."""
    record("signin.fail", username, actor=None, details={"reason": reason})
    db.session.commit()


def _directory_refusal(form, username: str, refusal: Exception):
    """The directory could not be asked, or knows the person but they may not come in: said as
    it is (the name clash and a closed registration are in the audit log already, for the admin
    to sort out). Only someone with the directory's password learns more than "unreachable"."""
    if isinstance(refusal, DirectoryUnreachable):
        security_log.error("directory unreachable at the sign-in of %r: %s", username, refusal)
        _sign_in_failed(username, "directory_unreachable")
        form.password.errors.append(_("The company directory cannot be reached: try again in a few minutes."))
        return render_template("auth/login.html", form=form), 503, {"Retry-After": "60"}
    security_log.warning("directory sign-in refused (%s): %r", type(refusal).__name__, username)
    if isinstance(refusal, directory_accounts.NameClash):
        message = _(
            "An account of this server already has this name, so your company account cannot use it. "
            "The administrator has been told."
        )
    elif isinstance(refusal, directory_accounts.UnusableName):
        message = unusable_name_message()
    elif isinstance(refusal, directory_accounts.RegistrationClosed):
        message = _(
            "Your company account has no account here yet, and this server takes no new accounts. "
            "Ask the administrator."
        )
    else:
        _sign_in_failed(username, "disabled")
        message = _("Your account is disabled in the company directory. Ask your administrator.")
    form.password.errors.append(message)
    return render_template("auth/login.html", form=form), 403


def unusable_name_message() -> str:
    """For a directory name that may not be a name here (app.directory.accounts.UnusableName)."""
    return _(
        "Your company account's name cannot be used here: it mixes alphabets (such as Latin and "
        "Cyrillic letters) or has more than 64 characters. Ask the administrator."
    )


def _too_busy(template: str, form):
    """Every password-hashing slot stayed taken: the form again, with when to try."""
    security_log.warning("password hashing busy: %s from %s", request.endpoint, request.remote_addr)
    notice = _("The server is busy with other sign-ins: try again in a few seconds.")
    return render_template(template, form=form, notice=notice), 503, {"Retry-After": "5"}


def safe_next(default: str) -> str:
    # Only a path on this site: never an open redirect to another host.
    target = request.args.get("next") or request.form.get("next") or ""
    parts = urlsplit(target)
    if not target or parts.netloc or parts.scheme or not target.startswith("/"):
        return default
    # A line break would split the Location header (a 500); a browser reads "/\\host" as "//host".
    if not target.isprintable() or "\\" in target:
        return default
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with a username and password."""
    if current_user.is_authenticated:
        return redirect(url_for("chat.index"))
    form = LoginForm()
    if form.validate_on_submit():
        username = form.username.data.strip()
        attempt = throttle.begin(username, request.remote_addr)
        if attempt.seconds_to_wait:  # the password is not even checked
            # Not in the audit log: no sign-in was tried, and a flood of refusals would fill it.
            security_log.warning("sign-in throttled: %r from %s", username, request.remote_addr)
            form.password.errors.append(throttle.wait_message(attempt.seconds_to_wait))
            headers = {"Retry-After": str(attempt.seconds_to_wait)}
            return render_template("auth/login.html", form=form), 429, headers
        try:
            user = sign_in(username, form.password.data)
        except HashingBusy:
            attempt.succeeded()  # not a failure of the person's: not counted
            return _too_busy("auth/login.html", form)
        except (DirectoryRefusal, DirectoryUnreachable) as refusal:  # counted: no password was proved
            return _directory_refusal(form, username, refusal)
        if user is None:
            security_log.warning("sign-in failed: %r from %s", username, request.remote_addr)
            _sign_in_failed(username, "password")
            form.password.errors.append(_("Wrong username or password."))
        elif user.disabled:  # told only to whoever knows the password
            _sign_in_failed(username, "disabled")
            form.password.errors.append(_("This account is disabled. Ask the administrator."))
        elif user.pending:
            _sign_in_failed(username, "pending")
            form.password.errors.append(_("Your account is waiting for the administrator's approval."))
        else:
            attempt.succeeded()
            security_log.info("signed in: %r from %s", username, request.remote_addr)
            record("signin.ok", user.username, actor=user)
            db.session.commit()
            start_session(user, remember=form.remember.data)
            return redirect(safe_next(url_for("chat.index")))
    status = 401 if form.errors else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/register", methods=["GET", "POST"])
def register():
    """Create an account; the first one is the admin. The admin says who else may: anyone,
    anyone once approved, or no one."""
    if current_user.is_authenticated:
        return redirect(url_for("chat.index"))
    mode = users.registration_mode()
    first = db.session.scalar(sa.select(User.id).limit(1)) is None
    if (mode == "closed" or directory_enabled(current_app.config)) and not first:
        return _closed()
    form = RegisterForm()
    if form.validate_on_submit():
        sign_up = throttle.begin_sign_up(request.remote_addr)
        if sign_up.seconds_to_wait:
            security_log.warning("sign-up throttled: from %s", request.remote_addr)
            notice = throttle.sign_up_wait_message(sign_up.seconds_to_wait)
            headers = {"Retry-After": str(sign_up.seconds_to_wait)}
            return render_template("auth/register.html", form=form, notice=notice), 429, headers
        try:
            username, password = form.username.data.strip(), form.password.data
            user = create_user(
                username,
                password,
                pending=mode == "approval",
                only_first=mode == "closed",
                audit_action="account.register",
            )
        except UsernameTaken:
            sign_up.made_none()
            form.username.errors.append(_("This username, or one that looks the same, is taken."))
        except HashingBusy:
            sign_up.made_none()
            return _too_busy("auth/register.html", form)
        except RegistrationClosed:  # another visitor made the first account an instant before
            sign_up.made_none()
            return _closed()
        else:
            return _welcome(user)
    status = 400 if form.errors else 200
    return render_template("auth/register.html", form=form, approval=mode == "approval" and not first), status


def _closed():
    directory = directory_enabled(current_app.config)
    return render_template("auth/register.html", form=None, closed=True, directory=directory), 403


def _welcome(user: User):
    """The new account's first page: signed in, or told to wait for approval. The first account
    learns it runs the server, and where to start."""
    security_log.info("account created: %r from %s", user.username, request.remote_addr)
    if user.pending:
        return render_template("auth/register.html", form=None, waiting=True), 202
    start_session(user)
    if user.is_admin:
        flash(Markup(render_template("auth/_admin_welcome.html", user=user)), "success")
    else:
        flash(_("Welcome, %(name)s.", name=user.username), "success")
    return redirect(url_for("chat.index"))


@bp.post("/logout")
def logout():
    """Sign out, here and in every other browser of the account."""
    if current_user.is_authenticated:
        # Signing out signs out everywhere: every other session of the account too, and ends
        # the answers it is having written.
        current_user.end_sessions()
        record("signout", current_user.username)
        db.session.commit()
        registry().end_sessions_of(current_user.id)
    sessions.end()
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def change_password():
    """A new password; every other session of the account ends, this one goes on; the account's
    API keys too, if asked (a password changed for fear of a leak may well have one). A directory
    account's password is the directory's: the page says so, and changes nothing."""
    if current_user.directory_id:
        return render_template("auth/password.html", form=None), 403 if request.method == "POST" else 200
    form = ChangePasswordForm()
    if form.validate_on_submit():
        # Throttled as a sign-in is: a borrowed session must not make guessing the password cheap.
        attempt = throttle.begin(current_user.username, request.remote_addr)
        if attempt.seconds_to_wait:
            form.current.errors.append(throttle.wait_message(attempt.seconds_to_wait))
            headers = {"Retry-After": str(attempt.seconds_to_wait)}
            return render_template("auth/password.html", form=form), 429, headers
        try:
            if authenticate(current_user.username, form.current.data) is None:
                form.current.errors.append(_("This is not your current password."))
            elif form.password.data == form.current.data:
                attempt.succeeded()
                form.password.errors.append(_("Choose a new password, not the one you have now."))
            else:
                attempt.succeeded()
                current_user.password_hash = hash_password(form.password.data)
                return _password_changed(revoke_keys=form.revoke_keys.data)
        except HashingBusy:
            attempt.succeeded()
            return _too_busy("auth/password.html", form)
    status = 400 if form.errors else 200
    return render_template("auth/password.html", form=form), status


def _password_changed(revoke_keys: bool):
    user = current_user._get_current_object()
    user.end_sessions()
    user.must_change_password = False  # their own now: the one the admin saw no longer works
    revoked = keys.revoke_all(user) if revoke_keys else 0
    record("account.password_change", user.username, details={"api_keys_revoked": revoked})
    db.session.commit()
    security_log.info("password changed: %r from %s", user.username, request.remote_addr)
    start_session(user, remember=bool(session.get(sessions.REMEMBERED)))
    if revoked:
        flash(
            ngettext(
                "Your password is changed; your other sessions are signed out and your API key is revoked.",
                "Your password is changed; your other sessions are signed out and your %(num)d API "
                "keys are revoked.",
                revoked,
            ),
            "success",
        )
    else:
        flash(_("Your password is changed; your other sessions are signed out."), "success")
    return redirect(url_for("chat.index"))


@bp.post("/language")
def set_language():
    """Remember the language picked: in this browser, and for a signed-in user in their account."""
    lang = request.form.get("lang", "")
    if lang not in current_app.config["LANGUAGES"]:
        return render_error(400, _("Pick one of the languages offered."))
    session["lang"] = lang
    if current_user.is_authenticated:
        choose_language(current_user, lang)
    return redirect(safe_next(url_for("chat.index")))
