"""The sidebar's list of conversations: the pinned ones on top, then the others under the day
they were last written in ("Today", "Yesterday", "Previous 7 days", "Older"), in the reader's
time zone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from flask_babel import get_timezone
from flask_babel import lazy_gettext as _l

from app.models import Conversation

# Each group's key (the page and chat.js name them by it) and heading, in the order shown.
GROUPS = {
    "pinned": _l("Pinned"),
    "today": _l("Today"),
    "yesterday": _l("Yesterday"),
    "week": _l("Previous 7 days"),
    "older": _l("Older"),
}


@dataclass
class Group:
    key: str
    heading: str
    conversations: list[Conversation] = field(default_factory=list)


def grouped(conversations: list[Conversation], now: datetime, zone: tzinfo | None = None) -> list[Group]:
    """Every group, in order, each with its conversations in the order given (empty ones too:
    a conversation started on the page goes into "today" there). `now` and the stored times
    are naive UTC; `zone` is the reader's (Flask-Babel's, from the browser) unless given."""
    zone = zone or get_timezone()
    today = _day(now, zone)
    groups = {key: Group(key, str(heading)) for key, heading in GROUPS.items()}
    for conversation in conversations:
        groups[_group_of(conversation, today, zone)].conversations.append(conversation)
    return list(groups.values())


def _group_of(conversation: Conversation, today, zone: tzinfo) -> str:
    if conversation.pinned:
        return "pinned"
    days = (today - _day(conversation.updated_at, zone)).days
    if days <= 0:  # a clock a little ahead of the reader's counts as today
        return "today"
    if days == 1:
        return "yesterday"
    return "week" if days <= 7 else "older"


def _day(moment: datetime, zone: tzinfo):
    return moment.replace(tzinfo=UTC).astimezone(zone).date()
