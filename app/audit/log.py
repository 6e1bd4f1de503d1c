"""Reading the audit log: the admin's filter, a page of entries, the CSV export, and how long
entries are kept.

Retention is applied at most once a day by the first request a server process answers after
the day changed (so at start too), not by a timer thread: the app has no scheduler of its own,
several processes may serve it, and the deletion is idempotent (a second process that finds
nothing older writes nothing). Not at every write: a record() that deleted would add a second
entry to the change it records, and an admin's action would pay for a DELETE over the table.
Changing the setting applies it at once.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.audit import record
from app.errors.inputs import whole_number
from app.extensions import db
from app.metrics.dashboard import spreadsheet_safe
from app.models import AuditEntry, SiteSetting, utcnow

log = logging.getLogger(__name__)

PAGE_SIZE = 50
RETENTION_KEY = "audit_retention_days"
RETENTION_MAX_DAYS = 36500  # a hundred years: beyond, "keep forever" (0) says it better
_ADDRESS = re.compile(r"[0-9A-Fa-f.:]{1,64}")

# What each action means, in the reader's language. Actions without a label (a part added
# later) show their code, and are still offered in the filter once they appear in the log.
ACTIONS: dict[str, Any] = {
    "signin.ok": _l("Signed in"),
    "signin.fail": _l("Sign-in refused"),
    "signout": _l("Signed out"),
    "account.register": _l("Account registered"),
    "account.create": _l("Account created by an administrator"),
    "account.delete": _l("Account deleted"),
    "account.approve": _l("Account approved"),
    "account.disable": _l("Account disabled"),
    "account.enable": _l("Account enabled"),
    "account.admin": _l("Made administrator"),
    "account.not_admin": _l("No longer administrator"),
    "account.knowledge": _l("Knowledge bases management"),
    "account.password_change": _l("Password changed"),
    "account.password_reset": _l("Password reset by an administrator"),
    "account.export": _l("Personal data exported"),
    "account.quota": _l("Account quotas"),
    "registration.mode": _l("Registration mode"),
    "group.create": _l("Group created"),
    "group.update": _l("Group changed"),
    "group.delete": _l("Group deleted"),
    "group.members": _l("Group members"),
    "group.models": _l("Group models"),
    "group.collections": _l("Group collections"),
    "group.quota": _l("Group quotas"),
    "model.settings": _l("Model settings"),
    "model.default": _l("Default model"),
    "model.unload": _l("Model unloaded"),
    "serving.prompt_cache": _l("Prompt cache"),
    "answer.stop": _l("Answer stopped by an administrator"),
    "apikey.create": _l("API key made"),
    "apikey.revoke": _l("API key revoked"),
    "collection.create": _l("Collection created"),
    "collection.update": _l("Collection changed"),
    "collection.delete": _l("Collection deleted"),
    "document.upload": _l("Document added to a collection"),
    "document.replace": _l("Document replaced"),
    "document.delete": _l("Document deleted from a collection"),
    "share.create": _l("Conversation shared"),
    "share.withdraw": _l("Share withdrawn"),
    "conversation.import": _l("Conversations imported"),
    "benchmark.start": _l("Benchmark started"),
    "benchmark.cancel": _l("Benchmark cancelled"),
    "benchmark.delete": _l("Benchmark deleted"),
    "benchmark.import": _l("Benchmarks imported"),
    "directory.name_clash": _l("Directory name clashes with a local account"),
    "directory.refused_closed": _l("Directory sign-in refused: registration closed"),
    "directory.refused_name": _l("Directory sign-in refused: the name cannot be used here"),
    "audit.retention": _l("Audit log retention"),
    "audit.purge": _l("Old audit entries deleted"),
}


# The kinds of actions, for the filter ("account" keeps every account.* action).
FAMILIES: dict[str, Any] = {
    "signin": _l("Sign-ins"),
    "account": _l("Accounts"),
    "registration": _l("Registration"),
    "group": _l("Groups"),
    "model": _l("Models"),
    "serving": _l("Serving"),
    "answer": _l("Answers"),
    "apikey": _l("API keys"),
    "collection": _l("Collections"),
    "document": _l("Documents"),
    "share": _l("Shares"),
    "conversation": _l("Conversations"),
    "benchmark": _l("Benchmarks"),
    "directory": _l("Directory"),
    "audit": _l("Audit log"),
}
# The names in entries' details a reader meets most, in their language; others show as stored.
DETAIL_NAMES: dict[str, Any] = {
    "reason": _l("reason"),
    "pending": _l("waiting for approval"),
    "mode": _l("mode"),
    "days": _l("days"),
    "manages_knowledge": _l("manages the knowledge bases"),
    "api_keys_revoked": _l("API keys revoked"),
    "collection": _l("collection"),
    "filename": _l("file"),
    "name": _l("name"),
    "description": _l("description"),
    "open_to_all": _l("open to everyone"),
    "readers": _l("readers"),
    "documents": _l("documents"),
    "deleted": _l("deleted"),
    "retention_days": _l("kept (days)"),
    "older_than": _l("older than"),
    "model": _l("model"),
    "models": _l("models"),
    "enabled": _l("offered to users"),
    "by": _l("by"),
    "admin": _l("administrator"),
    "source": _l("from"),
    "imported": _l("imported"),
    "skipped": _l("skipped"),
    "erased": _l("erased"),
    "group": _l("group"),
    "conversation": _l("conversation"),  # a share's: its id (the target is its title)
    "user": _l("account"),
    "run": _l("run"),
    "runs": _l("runs"),
    "prefix": _l("key beginning"),
    "account_id": _l("account number"),
    # What an account's deletion erased (app.admin.erasure).
    "conversations": _l("conversations"),
    "messages": _l("messages"),
    "api_keys": _l("API keys"),
    "presets": _l("presets"),
    "shares": _l("shares"),
    "groups": _l("groups"),
    "collections_kept": _l("collections kept"),
    "collection_documents_kept": _l("collection documents kept"),
}
# Why a sign-in was refused: a wrong password and an unknown name are one reason.
REASONS: dict[str, Any] = {
    "password": _l("wrong password or unknown name"),
    "disabled": _l("account disabled"),
    "pending": _l("waiting for approval"),
    "throttled": _l("too many tries: made to wait"),
    "directory_unreachable": _l("directory unreachable"),
}


def label(action: str) -> str:
    return str(ACTIONS[action]) if action in ACTIONS else action


def family_label(family: str) -> str:
    return str(FAMILIES.get(family, family))


def kinds() -> list[str]:
    """The actions the filter offers: every one with a label, and any other the log holds."""
    stored = db.session.scalars(sa.select(AuditEntry.action).distinct())
    return sorted(set(ACTIONS) | set(stored))


@dataclass
class Filter:
    """The admin's filter, as typed (to show it back) and as checked; `errors` says, in the
    reader's language, what could not be understood (nothing is filtered then)."""

    action: str = ""
    person: str = ""
    since: str = ""
    until: str = ""
    address: str = ""
    page: int = 1
    errors: list[str] = field(default_factory=list)
    _since: datetime | None = None
    _until: datetime | None = None

    @classmethod
    def from_args(cls, args) -> Filter:
        found = cls(
            action=args.get("action", "").strip(),
            person=args.get("person", "").strip()[:64],
            since=args.get("since", "").strip(),
            until=args.get("until", "").strip(),
            address=args.get("address", "").strip(),
        )
        found.page = _page_number(args.get("page", ""))
        if found.action and found.action not in kinds() and found.action not in families():
            found.errors.append(_("There is no action “%(action)s” in the audit log.", action=found.action))
        first, last = _day(found.since, found.errors), _day(found.until, found.errors)
        if first and last and first > last:
            found.errors.append(_("The first day comes after the last one: swap them."))
        found._since = _start_of(first) if first else None
        # The last day a date can have ends after every entry: no upper bound then.
        found._until = _start_of(last + timedelta(days=1)) if last and last < date.max else None
        if found.address and not _ADDRESS.fullmatch(found.address):
            found.errors.append(
                _(
                    "“%(address)s” is not an address: digits, dots and colons (10.0.0.7, 10.0.0., fe80::1).",
                    address=found.address,
                )
            )
        return found

    def query_args(self, **changed) -> dict[str, Any]:
        """The filter as a URL's query (empty parts left out), for the pages and the export."""
        args = {"action": self.action, "person": self.person, "since": self.since, "until": self.until}
        args |= {"address": self.address, "page": self.page if self.page > 1 else ""}
        args |= changed
        return {key: value for key, value in args.items() if value not in ("", None)}

    def where(self) -> list:
        if self.errors:
            return [sa.false()]
        conditions = []
        if self.action in families():
            conditions.append(AuditEntry.action.startswith(self.action + ".", autoescape=True))
        elif self.action:
            conditions.append(AuditEntry.action == self.action)
        if self.person:
            name = self.person.lower()
            conditions.append(
                sa.or_(sa.func.lower(AuditEntry.actor_name) == name, sa.func.lower(AuditEntry.target) == name)
            )
        if self._since:
            conditions.append(AuditEntry.created_at >= self._since)
        if self._until:
            conditions.append(AuditEntry.created_at < self._until)
        if self.address:
            # "10.0.0." or "fe80:" names a range by its start; anything else one address.
            if self.address.endswith((".", ":")):
                conditions.append(AuditEntry.address.startswith(self.address, autoescape=True))
            else:
                conditions.append(AuditEntry.address == self.address)
        return conditions


def families() -> list[str]:
    """The kinds of actions: "account" stands for every account.* action, and so on."""
    return sorted({action.split(".")[0] for action in ACTIONS if "." in action} | set(FAMILIES))


def _page_number(text: str) -> int:
    return whole_number(text, 999_999) or 1  # page 0, or no number: the first


def _day(text: str, errors: list[str]) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append(_("“%(day)s” is not a date: pick a day such as 2026-12-07.", day=text[:40]))
        return None


def _start_of(day: date) -> datetime:
    """Midnight of `day` where the reader is (their browser's time zone), as the log's UTC."""
    local = datetime.combine(day, time(), tzinfo=get_timezone())
    try:
        return local.astimezone(UTC).replace(tzinfo=None)  # stored naive, in UTC (models.utcnow)
    except OverflowError:  # the first or last day a date can have, in a zone beyond UTC's range
        return datetime.min if day.year == 1 else datetime.max


@dataclass
class Page:
    entries: list[AuditEntry]
    number: int
    pages: int
    total: int


def page_of(found: Filter) -> Page:
    """The page asked for of the entries the filter keeps, newest first."""
    conditions = found.where()
    total = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(*conditions)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    number = min(found.page, pages)
    entries = db.session.scalars(
        sa.select(AuditEntry)
        .where(*conditions)
        .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
        .offset((number - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    )
    return Page(list(entries), number, pages, total)


@dataclass
class Change:
    """One line of an entry's details: a field before -> after, or a fact (before None)."""

    name: str
    after: str
    before: str | None = None


def changes(details: dict | None) -> list[Change]:
    """An entry's details as the page shows them: what changed, field by field, then the rest."""
    details = details if isinstance(details, dict) else {}
    before, after = details.get("before"), details.get("after")
    lines = []
    if isinstance(before, dict) or isinstance(after, dict):
        before, after = before if isinstance(before, dict) else {}, after if isinstance(after, dict) else {}
        for name in list(before) + [n for n in after if n not in before]:
            shown_before = _shown(before.get(name)) if name in before else None
            lines.append(Change(detail_name(name), _shown(after.get(name)), shown_before))
    elif "before" in details or "after" in details:  # one value changed, a list of members say
        lines.append(Change("", _shown(after), _shown(before) if "before" in details else None))
    for name, value in details.items():
        if name == "reason" and value in REASONS:
            lines.append(Change(detail_name(name), str(REASONS[value])))
        elif name not in ("before", "after"):
            lines.append(Change(detail_name(name), _shown(value)))
    return lines


def detail_name(name: str) -> str:
    """A field of the details in the reader's language: the audit's own names, else the label
    of the form that sets it (a model's settings, quotas), else as stored."""
    if name in DETAIL_NAMES:
        return str(DETAIL_NAMES[name])
    from app.admin.forms import ModelSettingsForm

    field = getattr(ModelSettingsForm, name, None)
    if field is not None and getattr(field, "args", None):
        return str(field.args[0])
    from app.quotas.usage import labels

    return labels().get(name, name)


def _shown(value: Any) -> str:
    if value is None or value == "":  # nothing, or an empty text: both read as nothing
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str | int) for item in value):
        return ", ".join(str(item) for item in value) or "—"
    if isinstance(value, dict):
        return ", ".join(f"{detail_name(k)} {_shown(v)}" for k, v in value.items()) or "—"
    return json.dumps(value, ensure_ascii=False)


CSV_COLUMNS = ("when_utc", "actor", "address", "action", "target", "details")


def csv_lines(found: Filter) -> Iterator[str]:
    """Every entry the filter keeps, newest first, as CSV lines: read from the database in
    batches, written as they come (a year of sign-ins is not held in memory). A cell that a
    spreadsheet would read as a formula (= + - @) starts with a quote."""
    out = io.StringIO()
    writer = csv.writer(out)

    def flushed() -> str:
        text = out.getvalue()
        out.seek(0)
        out.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flushed()
    query = (
        sa.select(AuditEntry)
        .where(*found.where())
        .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
        .execution_options(yield_per=500)
    )
    for entry in db.session.scalars(query):
        cells = (
            entry.created_at.isoformat(timespec="seconds") + "Z",
            entry.actor_name,
            entry.address,
            entry.action,
            entry.target,
            json.dumps(entry.details or {}, ensure_ascii=False, sort_keys=True),
        )
        writer.writerow([spreadsheet_safe(cell) for cell in cells])
        yield flushed()


def retention_days() -> int:
    """How many days entries are kept; 0: forever (the default)."""
    row = db.session.get(SiteSetting, RETENTION_KEY)
    return int(row.value) if row and row.value.isdigit() else 0


def set_retention(days: int) -> int:
    """Keep entries `days` days (0: forever); the entries already older go at once. Returns how
    many went."""
    before = retention_days()
    row = db.session.get(SiteSetting, RETENTION_KEY) or SiteSetting(key=RETENTION_KEY)
    row.value = str(days)
    db.session.add(row)
    record("audit.retention", str(days), details={"before": {"days": before}, "after": {"days": days}})
    db.session.commit()
    return purge_expired()


def purge_expired() -> int:
    """Delete the entries older than the retention; the deletion leaves an entry of its own
    (by nobody: the server), in the same transaction. Returns how many were deleted."""
    days = retention_days()
    if days <= 0:
        return 0
    cutoff = utcnow() - timedelta(days=days)
    deleted = db.session.execute(sa.delete(AuditEntry).where(AuditEntry.created_at < cutoff)).rowcount
    if deleted:
        older_than = cutoff.isoformat(timespec="seconds")
        details = {"deleted": deleted, "retention_days": days, "older_than": older_than}
        # Not the person whose request happened to run it: the server did.
        record("audit.purge", "", by_server=True, details=details)
    db.session.commit()
    return deleted


def apply_retention_daily() -> None:
    """Run by the first request of each day in each process (see the module's docstring)."""
    app = current_app._get_current_object()
    today = date.today()
    if app.extensions.get("audit_purged_on") == today:
        return
    try:
        purge_expired()
    except sa.exc.SQLAlchemyError:  # the database away: the page says so; tried again next request
        db.session.rollback()
        log.warning("audit retention not applied; tried again at the next request", exc_info=True)
        return
    app.extensions["audit_purged_on"] = today
