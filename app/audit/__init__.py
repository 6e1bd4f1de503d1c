"""The audit log: who changed what, from which address, when.

`record` adds an entry to the database session of the change it records, so both are committed
together or not at all: call it before the commit that makes the change. The admin's page over
the log (filter, CSV export, retention) lives in this package's views.
"""

from __future__ import annotations

from typing import Any

from flask import has_request_context, request
from flask_login import current_user

from app.extensions import db
from app.models import AuditEntry, User


def record(
    action: str,
    target: str = "",
    *,
    actor: User | None = None,
    details: dict[str, Any] | None = None,
    by_server: bool = False,
) -> AuditEntry:
    """One entry for one change, e.g. record("account.disable", "bob"), or for a setting
    record("model.settings", "phi3:mini", details={"before": {...}, "after": {...}}). The actor is
    the signed-in person unless given (a sign-in names the account it was for); the address is
    the request's, as the server sees it (behind the proxy, the forwarded one). `by_server`: no
    person did it, nor from anywhere (the retention's deletion, run by whichever request came)."""
    if by_server:
        actor = None
    elif actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user._get_current_object()
    entry = AuditEntry(
        actor_id=actor.id if actor is not None and actor.id is not None else None,
        actor_name=actor.username if actor is not None else "",
        address=(request.remote_addr or "")[:64] if has_request_context() and not by_server else "",
        action=action[:64],
        target=(target or "")[:255],
        details=details or {},
    )
    db.session.add(entry)
    return entry


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The details of a change to a form's fields: only those that differ, before -> after (the
    reader looks for what changed, not for what was sent again)."""
    changed = [key for key in after if before.get(key) != after[key]]
    return {"before": {k: before.get(k) for k in changed}, "after": {k: after[k] for k in changed}}
