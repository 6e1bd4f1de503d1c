"""The admin's say over accounts: who may register, approval, disabling, roles, passwords.

Every change that takes something away (disable, demote, new password) acts on the user's
next request, open answer streams included: sessions carry the account's token and state,
read from the database at each request (`app.auth.routes.load_user`).
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from flask import current_app

from app import audit
from app.extensions import db
from app.models import AuditEntry, SiteSetting, User, fold_username

REGISTRATION_KEY = "registration"
REGISTRATION_MODES = ("open", "approval", "closed")


class DirectoryAccount(Exception):
    """A directory account's password is the directory's: nobody sets it here."""


class OwnAccount(Exception):
    """An admin may not disable or demote themselves (there must always be an admin who can act),
    nor reset their own password here (the Password page asks for the current one)."""


def registration_mode() -> str:
    """open: anyone on the network may create an account; approval: they wait for the admin;
    closed: no new account. The admin's choice, else REGISTRATION_MODE."""
    row = db.session.get(SiteSetting, REGISTRATION_KEY)
    mode = row.value if row else current_app.config["REGISTRATION_MODE"]
    return mode if mode in REGISTRATION_MODES else "approval"


def set_registration_mode(mode: str) -> None:
    if mode not in REGISTRATION_MODES:
        raise ValueError(mode)
    before = registration_mode()
    row = db.session.get(SiteSetting, REGISTRATION_KEY) or SiteSetting(key=REGISTRATION_KEY)
    row.value = mode
    db.session.add(row)
    audit.record("registration.mode", mode, details={"before": {"mode": before}, "after": {"mode": mode}})
    db.session.commit()


def accounts() -> list[User]:
    """Those waiting for approval first, then by name."""
    return list(db.session.scalars(sa.select(User).order_by(User.pending.desc(), User.username)))


def look_alikes(accounts: list[User]) -> set[int]:
    """The accounts whose names fold to the same ("Alice" and "alice"): made before names were
    compared folded, kept, and shown so the admin can tell them apart."""
    by_name: dict[str, list[int]] = {}
    for account in accounts:
        by_name.setdefault(fold_username(account.username), []).append(account.id)
    return {i for ids in by_name.values() if len(ids) > 1 for i in ids}


class LastAdmin(Exception):
    """The change would leave no active administrator."""


def _take_away(user: User, action: str, **values) -> None:
    """Disable or demote an account, unless it is the last active administrator — decided by
    the UPDATE itself, so two admins disabling each other at the same instant leave one. A
    refusal changes nothing and leaves no audit entry."""
    others = (
        sa.select(sa.func.count())
        .select_from(User)
        .where(User.is_admin, User.disabled.is_(False), User.pending.is_(False), User.id != user.id)
        .scalar_subquery()
    )
    # PostgreSQL: the admins' rows locked, so the concurrent change waits and then counts anew.
    db.session.execute(sa.select(User.id).where(User.is_admin).with_for_update())
    done = db.session.execute(
        sa.update(User)
        .where(User.id == user.id, sa.or_(User.is_admin.is_(False), others >= 1))
        .values(**values)
    )
    if done.rowcount != 1:
        db.session.rollback()
        raise LastAdmin(user.username)
    audit.record(action, user.username)
    db.session.commit()
    db.session.refresh(user)


def _not_self(user: User, admin: User) -> None:
    if user.id == admin.id:
        raise OwnAccount(user.username)


def approve(user: User) -> None:
    user.pending = False
    audit.record("account.approve", user.username)
    db.session.commit()


def set_disabled(user: User, disabled: bool, admin: User) -> None:
    _not_self(user, admin)
    if disabled:
        # signed out everywhere
        _take_away(user, "account.disable", disabled=True, session_token=secrets.token_hex(16))
    else:
        user.disabled = False
        audit.record("account.enable", user.username)
        db.session.commit()


def set_admin(user: User, is_admin: bool, admin: User) -> None:
    _not_self(user, admin)
    if is_admin:
        user.is_admin = True
        audit.record("account.admin", user.username)
        db.session.commit()
    else:
        _take_away(user, "account.not_admin", is_admin=False)


def set_manages_knowledge(user: User, manages: bool) -> None:
    """Named (or no longer) to create knowledge collections and fill them: from their next page."""
    before = user.manages_knowledge
    user.manages_knowledge = manages
    details = {"before": {"manages_knowledge": before}, "after": {"manages_knowledge": manages}}
    audit.record("account.knowledge", user.username, details=details)
    db.session.commit()


def one_time_password() -> str:
    return secrets.token_urlsafe(12)  # 16 characters, ~96 bits


def reset_password(user: User, admin: User) -> str:
    """A new password, chosen at random, to hand to the user, who chooses their own at the next
    sign-in (the admin saw this one); their sessions end."""
    _not_self(user, admin)
    if user.directory_id:
        raise DirectoryAccount(user.username)
    from app.auth.services import hash_password  # (app.auth's views import this module)

    password = one_time_password()
    user.password_hash = hash_password(password)
    user.must_change_password = True
    user.end_sessions()
    audit.record("account.password_reset", user.username)
    db.session.commit()
    return password


def create_account(username: str, *, admin: bool, manages_knowledge: bool) -> tuple[User, str]:
    """A local account made by the admin, whatever the registration mode, with a one-time
    password to hand over: the person chooses their own at the first sign-in."""
    from app.auth.services import UsernameTaken, hash_password  # (app.auth's views import this module)

    key = fold_username(username)
    if db.session.scalar(sa.select(User.id).where(User.username_key == key).limit(1)) is not None:
        raise UsernameTaken(username)
    password = one_time_password()
    user = User(
        username=username,
        username_key=key,
        password_hash=hash_password(password),  # before the transaction: the slow part holds no lock
        is_admin=admin,
        manages_knowledge=manages_knowledge and not admin,  # admins manage the knowledge bases anyway
        must_change_password=True,
    )
    db.session.add(user)
    audit.record(
        "account.create",
        username,
        details={"by": "admin", "admin": admin, "manages_knowledge": manages_knowledge},
    )
    try:
        db.session.commit()
    except sa.exc.IntegrityError as exc:  # the same name, made an instant before
        db.session.rollback()
        raise UsernameTaken(username) from exc
    return user, password


def source_of(user: User) -> str:
    """Where the account signs in: "local", or the directory ("ldap", "oidc")."""
    return (user.directory_id or "local").split(":", 1)[0]


def pending_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(User).where(User.pending)) or 0


def name_clashes(limit: int = 20) -> list[dict]:
    """The directory sign-ins refused because a local account holds the name, and still refused
    (that account is there, local, with that name): who tried, from which directory, which
    account has the name, for the admin to act. The latest per name."""
    entries = db.session.scalars(
        sa.select(AuditEntry)
        .where(AuditEntry.action == "directory.name_clash")
        .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
        .limit(200)
    ).all()
    ids = {e.details.get("account_id") for e in entries if isinstance(e.details.get("account_id"), int)}
    holders = {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(ids)))}
    clashes: dict[str, dict] = {}
    for entry in entries:
        holder = holders.get(entry.details.get("account_id"))
        name = fold_username(entry.target)
        if holder is None or holder.directory_id or holder.username_key != name or name in clashes:
            continue  # settled (the local account gone, renamed or linked), or listed already
        clashes[name] = {
            "at": entry.created_at,
            "tried": entry.target,
            "source": str(entry.details.get("source", "")),
            "holder": holder,
        }
    return list(clashes.values())[:limit]
