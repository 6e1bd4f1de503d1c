"""Accounts: password hashing, registration, sign-in checks."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, current_app

from app.audit import record
from app.extensions import db
from app.models import User, fold_username

PASSWORD_MIN = 12
PASSWORD_MAX = 128
USERNAME_PATTERN = r"^[\w.-]+$"

# argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile: 64 MiB, 3 passes,
# 4 lanes), above OWASP ASVS 5.0's floor (appendix C: m >= 12 MiB for 3 passes or more);
# tests/test_passwords.py reads these parameters back from a stored hash.
_hasher = PasswordHasher()
# Checked against when the username is unknown, so both failures take the same time.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class UsernameTaken(Exception):
    pass


class RegistrationClosed(Exception):
    """Registration is closed and the first account exists: someone else made it first."""


class HashingBusy(Exception):
    """Every hashing slot stayed taken for PASSWORD_HASH_WAIT_SECONDS: the person tries again."""


def hashes_at_once(app: Flask) -> int:
    """PASSWORD_HASHES_AT_ONCE, or one per core this process may use."""
    configured = int(app.config["PASSWORD_HASHES_AT_ONCE"])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return configured if configured > 0 else cores


_creating = threading.Lock()


def _slots(app: Flask) -> threading.BoundedSemaphore:
    with _creating:
        if "hashing_slots" not in app.extensions:
            app.extensions["hashing_slots"] = threading.BoundedSemaphore(hashes_at_once(app))
        return app.extensions["hashing_slots"]


@contextmanager
def hashing_slot() -> Iterator[None]:
    """A hash takes 64 MiB and a core for a fraction of a second: 40 sign-ups at once took the
    server from 102 MB to 1.4 GB and other pages to seconds. Hashes beyond one per core wait
    their turn, a few seconds at most, then the person is asked to try again."""
    app = current_app._get_current_object()
    slots = _slots(app)
    if not slots.acquire(timeout=float(app.config["PASSWORD_HASH_WAIT_SECONDS"])):
        raise HashingBusy
    try:
        yield
    finally:
        slots.release()


def hash_password(password: str) -> str:
    with hashing_slot():
        return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    with hashing_slot():
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def find_user(username: str) -> User | None:
    """The account of a name as typed: its exact name, else the name it folds to ("Alice" signs
    in as "alice"). The exact name first: accounts that collided before names were folded keep
    signing in with their own."""
    candidates = db.session.scalars(
        sa.select(User).where(sa.or_(User.username == username, User.username_key == fold_username(username)))
    ).all()
    return next((u for u in candidates if u.username == username), candidates[0] if candidates else None)


def authenticate(username: str, password: str) -> User | None:
    user = find_user(username)
    if not _verify(user.password_hash if user else _DUMMY_HASH, password) or user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        db.session.commit()
    return user


def sign_in(username: str, password: str) -> User | None:
    """The account a name and password open: a local account by its own password, else, when
    LDAP_URL is set, a directory account by the directory's (made at its first sign-in, brought
    in step at each). None for a wrong password and an unknown name alike, each after the same
    work: one password hash checked and the directory asked. A local account's wrong password
    is tried against the directory too: the directory's person of that name is refused as a
    name clash, which the admin sees, rather than told the password is wrong.

    Raises HashingBusy, and, once the directory was asked, DirectoryUnreachable, NameClash,
    RegistrationClosed (app.directory.accounts') or DisabledInDirectory."""
    from app.directory import ldap
    from app.directory.accounts import UNUSABLE_PASSWORD, account_for

    if not current_app.config.get("LDAP_URL"):
        return authenticate(username, password)
    local = find_user(username)
    local_password = local is not None and local.password_hash != UNUSABLE_PASSWORD
    if local_password and authenticate(username, password) is local:
        return local  # a local account signs in whatever state the directory is in
    person = ldap.directory().authenticate(username, password)
    if person is None:
        if not local_password:
            _verify(_DUMMY_HASH, password)  # the hash a local account's failure costs
        return None
    return account_for(person)


def _taken(username: str) -> bool:
    key = fold_username(username)
    return db.session.scalar(sa.select(User.id).where(User.username_key == key).limit(1)) is not None


def create_user(
    username: str,
    password: str,
    admin: bool = False,
    pending: bool = False,
    only_first: bool = False,
    audit_action: str = "",
) -> User:
    """Create an account; the very first account becomes the admin (never pending).

    The admin flag goes to the lowest id, decided by one UPDATE after the insert, so two
    simultaneous first registrations cannot both become admin. `only_first` (registration
    closed): the account is made only if it is the first, decided in the insert's transaction.
    `audit_action`: the audit log's entry for it, written in that same transaction.
    """
    if _taken(username):
        raise UsernameTaken(username)
    # Hashed before the transaction: the slow part holds no lock.
    user = User(
        username=username,
        username_key=fold_username(username),
        password_hash=hash_password(password),
        is_admin=admin,
        pending=pending,
    )
    db.session.add(user)
    try:
        if only_first:
            _make_only_if_first()
        if audit_action:
            db.session.flush()  # the entry names the account by its id too
            record(audit_action, username, actor=user, details={"pending": pending})
        db.session.commit()
    except sa.exc.IntegrityError as exc:
        db.session.rollback()
        raise UsernameTaken(username) from exc
    first_id = sa.select(sa.func.min(User.id)).scalar_subquery()
    db.session.execute(
        sa.update(User).where(User.id == user.id, User.id == first_id).values(is_admin=True, pending=False)
    )
    db.session.commit()
    db.session.refresh(user)
    return user


# The advisory lock of the first account's creation (any number this app uses for nothing else).
FIRST_ACCOUNT_LOCK = 0x43415553  # "CAUS"


def _make_only_if_first() -> None:
    """Insert the pending account, then count the accounts, in one transaction that no other
    such insert can interleave with: SQLite's writer holds its lock from the insert on; on
    PostgreSQL the others queue behind a transaction-scoped advisory lock until the commit, and
    then see its row (each statement reads afresh). Not LOCK TABLE "user": under twenty sign-ups
    at once PostgreSQL found two of them each waiting for the other's table lock and ended one
    with a 500, in one run of the race test in three; the advisory lock touches nothing else."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": FIRST_ACCOUNT_LOCK})
    db.session.flush()
    if db.session.scalar(sa.select(sa.func.count()).select_from(User)) > 1:
        db.session.rollback()
        raise RegistrationClosed
