"""API keys: made and revoked by their owner, shown once, stored as a digest."""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa

from app.audit import record as audit
from app.directory import recheck
from app.extensions import db
from app.models import ApiKey, User, utcnow

PREFIX = "cau_"
NAME_LENGTH = 100


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(user: User, name: str) -> tuple[ApiKey, str]:
    """A new key: the record, and the key itself — to show once, never stored."""
    key = PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(user_id=user.id, name=name, prefix=key[: len(PREFIX) + 6], digest=digest(key))
    db.session.add(record)
    audit("apikey.create", name, actor=user, details={"prefix": record.prefix})
    db.session.commit()
    return record, key


def keys_of(user: User) -> list[ApiKey]:
    return list(
        db.session.scalars(
            sa.select(ApiKey)
            .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
        )
    )


def owned(user: User, key_id: int) -> ApiKey | None:
    return db.session.scalar(sa.select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user.id))


def revoke(key: ApiKey) -> None:
    key.revoked_at = utcnow()
    audit("apikey.revoke", key.name, details={"prefix": key.prefix})
    db.session.commit()


def revoke_all(user: User) -> int:
    """Revoke every active key of the account, in the caller's transaction; how many."""
    done = db.session.execute(
        sa.update(ApiKey)
        .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return done.rowcount


def user_for(key: str) -> tuple[User, ApiKey] | None:
    """The active account a key belongs to, or None (unknown, revoked, account disabled)."""
    if not key.startswith(PREFIX):
        return None
    record = db.session.scalar(sa.select(ApiKey).where(ApiKey.digest == digest(key)))
    if record is None or record.revoked_at is not None or not record.owner.is_active:
        return None
    if not recheck.still_allowed(record.owner):  # disabled or gone in its directory since
        return None
    now = utcnow()
    if record.last_used_at is None or (now - record.last_used_at).total_seconds() > 60:
        record.last_used_at = now  # written once a minute at most, not on every request
        db.session.commit()
    return record.owner, record


def still_valid(key_id: int) -> bool:
    """For a long answer: whether its key still works (not revoked, account still active)."""
    with db.engine.connect() as connection:
        row = connection.execute(
            sa.select(ApiKey.revoked_at, User.disabled, User.pending)
            .join(User, User.id == ApiKey.user_id)
            .where(ApiKey.id == key_id)
        ).first()
    return row is not None and row.revoked_at is None and not row.disabled and not row.pending
