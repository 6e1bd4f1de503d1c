"""Accounts: password hashing, registration, sign-in checks."""

from __future__ import annotations

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.extensions import db
from app.models import User

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


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def authenticate(username: str, password: str) -> User | None:
    user = db.session.scalar(sa.select(User).where(User.username == username))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        db.session.commit()
    return user


def create_user(username: str, password: str, admin: bool = False, pending: bool = False) -> User:
    """Create an account; the very first account becomes the admin (never pending).

    The admin flag goes to the lowest id, decided by one UPDATE after the insert, so two
    simultaneous first registrations cannot both become admin.
    """
    if db.session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise UsernameTaken(username)
    user = User(username=username, password_hash=hash_password(password), is_admin=admin, pending=pending)
    db.session.add(user)
    try:
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
