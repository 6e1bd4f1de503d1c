"""Directory accounts checked again while they are in use: a person disabled in the directory (or
gone from it) is out within DIRECTORY_RECHECK_MINUTES, open sessions and API keys alike.

An account whose last check is older than that is looked up again on its next request
(`still_allowed`, called where sessions and API keys are loaded). Each directory registers how
to look a person up: `register("ldap", lookup)`; a lookup returns the person as the directory
has them now (a `DirectoryPerson`), None or DisabledInDirectory when they are gone or disabled,
and raises DirectoryUnreachable (or the exceptions it registers as meaning the same) when it
cannot tell.

A directory that cannot be reached signs nobody out: that would sign everyone out at each
outage of the directory, an outage being no sign that anyone left. The account stays as it was
and is checked again at its next request once RETRY_SECONDS have passed; meanwhile no request
waits for a directory known to be down (each try may take LDAP_TIMEOUT_SECONDS).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app

from app.directory.accounts import DirectoryPerson, DirectoryUnreachable, DisabledInDirectory, disable, sync
from app.extensions import db
from app.models import User, utcnow

log = logging.getLogger("causerie.directory")

RETRY_SECONDS = 60.0  # after a failed check, the directory is left alone this long

Lookup = Callable[[User], DirectoryPerson | None]


@dataclass(frozen=True)
class Source:
    lookup: Lookup
    unreachable: tuple[type[BaseException], ...]


_sources: dict[str, Source] = {}
_state_lock = threading.Lock()


def register(source: str, lookup: Lookup, unreachable: tuple[type[BaseException], ...] = ()) -> None:
    """How accounts whose directory_id starts with "<source>:" are looked up again."""
    _sources[source] = Source(lookup, (DirectoryUnreachable, *unreachable))


@dataclass
class _State:
    down_until: dict[str, float]  # per source: monotonic time before which it is not asked
    checking: set[int]  # accounts being looked up right now (a page's parallel requests)


def _state() -> _State:
    app = current_app._get_current_object()
    with _state_lock:
        return app.extensions.setdefault("directory_recheck", _State({}, set()))


def is_due(user: User) -> bool:
    if not user.directory_id:
        return False
    minutes = current_app.config["DIRECTORY_RECHECK_MINUTES"]
    checked = user.directory_checked_at
    return checked is None or utcnow() - checked >= timedelta(minutes=minutes)


def still_allowed(user: User) -> bool:
    """False when the directory says the (active, directory) account is disabled or gone: it is
    then disabled here, its sessions ended (committed). True otherwise, including when the
    directory cannot be asked."""
    if not is_due(user):
        return True
    source_name = user.directory_id.partition(":")[0]
    source = _sources.get(source_name)
    if source is None:
        return True  # a directory this server no longer knows: nothing to ask
    state = _state()
    with _state_lock:
        if state.down_until.get(source_name, 0.0) > time.monotonic() or user.id in state.checking:
            return True
        state.checking.add(user.id)
    try:
        return _check(user, source_name, source)
    finally:
        with _state_lock:
            state.checking.discard(user.id)


def _check(user: User, source_name: str, source: Source) -> bool:
    token = user.session_token
    try:
        person = source.lookup(user)
    except DisabledInDirectory:
        person = None
    except source.unreachable as exc:
        log.warning(
            "%s: cannot check %r again (kept; retried in %ds): %s",
            source_name,
            user.username,
            RETRY_SECONDS,
            exc,
        )
        state = _state()  # outside the lock: _state() takes it (not reentrant)
        with _state_lock:
            state.down_until[source_name] = time.monotonic() + RETRY_SECONDS
        db.session.rollback()
        return True
    if person is None:
        log.warning("%s: %r is gone from the directory or refused: signed out", source_name, user.username)
        if not user.disabled:
            disable(user, source_name, reason="gone")
        user.directory_checked_at = utcnow()
    else:
        sync(user, person)
    db.session.commit()
    return user.is_active and user.session_token == token


def _ldap_lookup(user: User) -> DirectoryPerson | None:
    from app.directory import ldap

    directory = ldap.directory()
    if directory is None:
        raise DirectoryUnreachable("LDAP_URL is empty: LDAP accounts cannot be checked")
    return directory.lookup(user.directory_id.partition(":")[2])


register("ldap", _ldap_lookup)
