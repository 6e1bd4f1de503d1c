"""Quotas: how many answers and tokens a person may have a day, and how many answers at once.

A person's limits are their own (User.answers_per_day, tokens_per_day, answers_at_once) where
set, else their groups': a member of several groups gets the most generous value of each, and a
group that sets none gives no limit on it (for answers at once: the server's
MAX_ANSWERS_PER_USER). Someone in no group and without limits of their own has no daily limit
and MAX_ANSWERS_PER_USER answers at once.

A day is a calendar day in the server's time zone: the machine's local time, which the TZ
environment variable sets (`TZ=Europe/Paris`), else /etc/localtime. Tokens are those the model
generates, its thinking included; the prompt's are not counted (a conversation's earlier turns,
read again from the engine's cache at every question, would make long conversations cost more
and more for what the person does not write). The chat, the compare page and the API of the same
person share one budget; benchmarks are exempt (they never come through `charge`).

Each answer allowed to start leaves a QuotaUse row, written before anything else of it is
stored: answers asked at the same instant are counted one after the other (a lock on the
person's row in PostgreSQL, SQLite's single writer, and a lock per person in this process), so
that twenty requests at a limit of N start exactly N. Tokens are counted as the answer streams,
in this process (the ledger), and written to its row at its end; an answer is cut when its
author's tokens of the day reach their limit.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import format_datetime, format_decimal, ngettext
from flask_babel import gettext as _
from sqlalchemy.exc import SQLAlchemyError

from app.accounts.access import groups_of
from app.accounts.ledger import Ledger
from app.extensions import db
from app.models import Group, QuotaUse, User, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """None: no limit."""

    answers_per_day: int | None
    tokens_per_day: int | None
    answers_at_once: int | None

    @property
    def daily(self) -> bool:
        return self.answers_per_day is not None or self.tokens_per_day is not None


@dataclass(frozen=True)
class Remaining:
    """What a person has used today and what is left of it (None: no limit)."""

    limits: Limits
    answers_used: int
    tokens_used: int
    resets_at: datetime  # naive UTC: the server's next midnight

    @property
    def answers(self) -> int | None:
        limit = self.limits.answers_per_day
        return None if limit is None else max(0, limit - self.answers_used)

    @property
    def tokens(self) -> int | None:
        limit = self.limits.tokens_per_day
        return None if limit is None else max(0, limit - self.tokens_used)

    def as_dict(self) -> dict:
        """The API's and the composer's view (GET /api/v1/quota, GET /quota)."""
        return {
            "answers_per_day": self.limits.answers_per_day,
            "tokens_per_day": self.limits.tokens_per_day,
            "answers_at_once": self.limits.answers_at_once,
            "answers_used": self.answers_used,
            "tokens_used": self.tokens_used,
            "answers_left": self.answers,
            "tokens_left": self.tokens,
            "resets_at": self.resets_at.replace(tzinfo=UTC).isoformat(),
            "summary": summary(self),
        }


class QuotaExceeded(Exception):
    """An answer refused: its author has used the day's answers or tokens."""

    def __init__(self, kind: str, limit: int, resets_at: datetime) -> None:
        super().__init__(f"{kind} per day: {limit}")
        self.kind = kind  # "answers" | "tokens"
        self.limit = limit
        self.resets_at = resets_at  # naive UTC

    @property
    def message(self) -> str:
        return refused_message(self.kind, self.limit, self.resets_at)

    def seconds_left(self, now: datetime | None = None) -> int:
        return max(1, int((self.resets_at - (now or utcnow())).total_seconds()) + 1)


# -- the day -------------------------------------------------------------------------------------
def today(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The server's calendar day around `now` (naive UTC), as [start, end) in naive UTC. The
    local midnights come from the C library's rules for the zone, daylight saving included."""
    moment = (now or utcnow()).replace(tzinfo=UTC)
    local_day = datetime.fromtimestamp(moment.timestamp()).date()
    return _midnight(local_day), _midnight(local_day + timedelta(days=1))


def _midnight(day: date) -> datetime:
    stamp = datetime.combine(day, time.min).timestamp()  # a naive time is read as local
    return datetime.fromtimestamp(stamp, UTC).replace(tzinfo=None)


# -- whose limits --------------------------------------------------------------------------------
def server_answers_at_once() -> int | None:
    """The serving core's bound on one person's answers at once (MAX_ANSWERS_PER_USER, as the
    scheduler holds it); None: no bound."""
    llm = current_app.extensions.get("llm")
    bound = llm.scheduler.max_per_user if llm is not None else current_app.config["MAX_ANSWERS_PER_USER"]
    return bound or None


def limits_for(user: User, groups: list[Group] | None = None) -> Limits:
    """The person's own limits over their groups' (the most generous group's). `groups`: theirs,
    when the caller read everyone's at once (a page listing many people), else they are read."""
    groups = groups_of(user) if groups is None else groups
    default_at_once = server_answers_at_once()

    def own_else_groups(name: str, default: int | None) -> int | None:
        own = getattr(user, name)
        if own is not None:
            return own
        values = [value if (value := getattr(group, name)) is not None else default for group in groups]
        if not values:
            return default
        return None if any(value is None for value in values) else max(values)

    return Limits(
        answers_per_day=own_else_groups("answers_per_day", None),
        tokens_per_day=own_else_groups("tokens_per_day", None),
        answers_at_once=own_else_groups("answers_at_once", default_at_once),
    )


# -- what is used --------------------------------------------------------------------------------
def ledger() -> Ledger:
    return current_app.extensions.setdefault("quota_ledger", Ledger())


# One lock per person: this process's threads take turns at counting and writing their rows.
_person_locks: defaultdict[int, threading.Lock] = defaultdict(threading.Lock)
_person_locks_lock = threading.Lock()


def _person_lock(user_id: int) -> threading.Lock:
    with _person_locks_lock:
        return _person_locks[user_id]


def remaining(user: User, now: datetime | None = None) -> Remaining:
    """What the person has used today (answers under way included) and what is left."""
    start, end = today(now)
    answers = db.session.scalar(
        sa.select(sa.func.count(QuotaUse.id)).where(QuotaUse.user_id == user.id, QuotaUse.started_at >= start)
    )
    book = ledger()
    with book.lock:
        book.load(user.id, start)
        tokens = book.spent(user.id, start)
    return Remaining(limits_for(user), int(answers or 0), tokens, end)


def check_can_start(user: User, answers: int = 1) -> Remaining:
    """What is left when `answers` more answers of `user` may start now, else QuotaExceeded: an
    early refusal for a request that starts several (an API comparison), none of which should
    start when not all may. It counts nothing: `charge` does, atomically, for each."""
    left = remaining(user)
    if left.answers is not None and left.answers < answers:
        raise QuotaExceeded("answers", left.limits.answers_per_day, left.resets_at)
    if left.tokens is not None and left.tokens <= 0:
        raise QuotaExceeded("tokens", left.limits.tokens_per_day, left.resets_at)
    return left


# -- an answer's charge --------------------------------------------------------------------------
@dataclass
class Charge:
    """One answer counted against its author's day: its row, and the token limit it is cut at."""

    use_id: int
    user_id: int
    tokens_limit: int | None
    book: Ledger
    reached_message: str  # what its author reads when it is cut, in their language and zone
    cut: bool = False

    def spend(self, tokens: int = 1) -> int | None:
        """Count generated tokens: what is left of the day's after them (None: no limit); 0 when
        they reach the limit, below 0 when it was reached before them (they are not shown)."""
        return self.book.add(self.use_id, tokens, self.tokens_limit)


def charge(user: User, limits: Limits | None = None) -> Charge:
    """Count one more answer of `user` today, or QuotaExceeded (with the time it resets).

    Atomic: the row is inserted, then the day's rows counted, in one transaction that holds the
    person's row locked (PostgreSQL) or the database's write lock (SQLite, from the insert), and
    this process's lock for the person; an answer beyond the limit rolls its row back. Commits
    the session (nothing of the answer is stored yet)."""
    limits = limits or limits_for(user)
    start, end = today()
    book = ledger()
    with _person_lock(user.id):
        try:
            db.session.execute(sa.select(User.id).where(User.id == user.id).with_for_update())
            use = QuotaUse(user_id=user.id, started_at=max(utcnow(), start))
            db.session.add(use)
            db.session.flush()
            answers = db.session.scalar(
                sa.select(sa.func.count(QuotaUse.id)).where(
                    QuotaUse.user_id == user.id, QuotaUse.started_at >= start
                )
            )
            if limits.answers_per_day is not None and answers > limits.answers_per_day:
                raise QuotaExceeded("answers", limits.answers_per_day, end)
            with book.lock:
                book.load(user.id, start)
                tokens = book.spent(user.id, start)
            if limits.tokens_per_day is not None and tokens >= limits.tokens_per_day:
                raise QuotaExceeded("tokens", limits.tokens_per_day, end)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        book.begin(use.id, user.id, start)
    limit = limits.tokens_per_day
    # Worded now, in the request's language and the reader's time zone: the cut comes later, in
    # the thread that writes the answer.
    return Charge(use.id, user.id, limit, book, reached_message(limit, end) if limit is not None else "")


def refund(held: Charge) -> None:
    """The answer never started (its question could not be stored): it does not count. Called
    while the request fails: what its session held is given up first (a failed flush must not
    hide the refusal the person is owed behind a second error)."""
    held.book.forget(held.use_id)
    try:
        db.session.rollback()
        db.session.execute(sa.delete(QuotaUse).where(QuotaUse.id == held.use_id))
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("an answer that never started is still counted against user %s", held.user_id)


def settle(held: Charge, engine_tokens: int) -> None:
    """The answer ended: its tokens are those the engine reported (thinking included), or those
    counted as it streamed when more (an engine that reported none); for an answer cut at the
    limit, those its author received (the engine may write a few more before the cut reaches it)."""
    counted = held.book.counted(held.use_id)
    held.book.end(held.use_id, counted if held.cut else max(engine_tokens, counted))


# -- in the person's words -----------------------------------------------------------------------
def reset_time(resets_at: datetime) -> str:
    """When the day's quotas are given back, in the reader's zone: "08/12/2026 00:00"."""
    return format_datetime(resets_at, "short")


def refused_message(kind: str, limit: int, resets_at: datetime) -> str:
    if kind == "answers":
        text = ngettext(
            "You have used today's quota of %(num)d answer.",
            "You have used today's quota of %(num)d answers.",
            limit,
        )
    else:
        text = _("You have used today's quota of %(limit)s tokens.", limit=format_decimal(limit))
    return f"{text} " + _("It is given back on %(time)s.", time=reset_time(resets_at))


def reached_message(limit: int, resets_at: datetime) -> str:
    return _(
        "Quota reached: today's %(limit)s tokens are used, so the answer stops here (what was written "
        "is kept). The quota is given back on %(time)s.",
        limit=format_decimal(limit),
        time=reset_time(resets_at),
    )


def summary(left: Remaining) -> str:
    """The composer's line, "12 answers and 8,400 tokens left today"; "" without a daily limit."""
    answers, tokens = left.answers, left.tokens
    if answers is not None and tokens is not None:
        return _(
            "%(answers)s and %(tokens)s left today",
            answers=ngettext("%(num)d answer", "%(num)d answers", answers),
            tokens=ngettext("%(count)s token", "%(count)s tokens", tokens, count=format_decimal(tokens)),
        )
    if answers is not None:
        return ngettext("%(num)d answer left today", "%(num)d answers left today", answers)
    if tokens is not None:
        return ngettext(
            "%(count)s token left today", "%(count)s tokens left today", tokens, count=format_decimal(tokens)
        )
    return ""
