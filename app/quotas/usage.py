"""Today's use against limits, for the admin: per person and per group; and the limits' form."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import format_decimal
from flask_babel import gettext as _

from app.accounts import quotas
from app.accounts.quotas import Limits
from app.errors.inputs import FormRefused, whole_number
from app.extensions import db
from app.models import Group, GroupMember, QuotaUse, User

QUOTA_FIELDS = ("answers_per_day", "tokens_per_day", "answers_at_once")
# The largest value each limit takes: beyond, a typing slip more likely than a wish.
HIGHEST = {"answers_per_day": 1_000_000, "tokens_per_day": 1_000_000_000, "answers_at_once": 1_000}
LOWEST = {"answers_per_day": 0, "tokens_per_day": 0, "answers_at_once": 1}


class QuotaRefused(FormRefused):
    """The limits' form has mistakes: a message per field."""


@dataclass(frozen=True)
class PersonUse:
    user: User
    limits: Limits
    answers: int
    tokens: int


@dataclass(frozen=True)
class GroupUse:
    group: Group
    members: list[PersonUse]

    @property
    def answers(self) -> int:
        return sum(m.answers for m in self.members)

    @property
    def tokens(self) -> int:
        return sum(m.tokens for m in self.members)


def labels() -> dict[str, str]:
    return {
        "answers_per_day": _("Answers per day"),
        "tokens_per_day": _("Tokens per day"),
        "answers_at_once": _("Answers at once"),
    }


def parse(form) -> dict[str, int | None]:
    """The three limits from a form: empty for none (answers at once: the server's bound);
    QuotaRefused naming each field that is not a whole number within its bounds."""
    values: dict[str, int | None] = {}
    errors: dict[str, str] = {}
    for name in QUOTA_FIELDS:
        raw = (form.get(name) or "").strip().replace("\u202f", "").replace("\u00a0", "").replace(" ", "")
        if not raw:
            values[name] = None
            continue
        number = whole_number(raw, HIGHEST[name])
        if number is None or number < LOWEST[name]:
            errors[name] = _(
                "%(field)s: a whole number from %(low)s to %(high)s, or empty for no limit.",
                field=labels()[name],
                low=format_decimal(LOWEST[name]),
                high=format_decimal(HIGHEST[name]),
            )
            continue
        values[name] = number
    if errors:
        raise QuotaRefused(errors)
    return values


def limits_of(holder: Group | User) -> dict[str, int | None]:
    return {name: getattr(holder, name) for name in QUOTA_FIELDS}


def set_limits(holder: Group | User, values: dict[str, int | None]) -> dict:
    """Apply the limits; the audit's {before, after} (the caller records it, then commits)."""
    before = limits_of(holder)
    for name, value in values.items():
        setattr(holder, name, value)
    return {"before": before, "after": limits_of(holder)}


def used_today(user_ids: list[int] | None = None) -> dict[int, tuple[int, int]]:
    """(answers, tokens) of everyone who asked something today (of `user_ids` only, when given),
    answers under way included."""
    start, _end = quotas.today()
    query = (
        sa.select(QuotaUse.user_id, sa.func.count(QuotaUse.id))
        .where(QuotaUse.started_at >= start)
        .group_by(QuotaUse.user_id)
    )
    if user_ids is not None:
        query = query.where(QuotaUse.user_id.in_(user_ids))
    rows = db.session.execute(query).all()
    book = quotas.ledger()
    with book.lock:
        book.load_all([user_id for user_id, _answers in rows], start)
        return {user_id: (answers, book.spent(user_id, start)) for user_id, answers in rows}


def person_use(user: User, used: dict[int, tuple[int, int]], groups: list[Group] | None = None) -> PersonUse:
    answers, tokens = used.get(user.id, (0, 0))
    return PersonUse(user, quotas.limits_for(user, groups), answers, tokens)


def groups_use() -> tuple[list[GroupUse], list[PersonUse]]:
    """Every group with its members' use today against their limits, by name; and the people in
    no group who asked something today or have limits of their own."""
    used = used_today()
    groups = list(db.session.scalars(sa.select(Group).order_by(Group.name)))
    members = db.session.execute(
        sa.select(GroupMember.group_id, User)
        .join(User, User.id == GroupMember.user_id)
        .order_by(User.username)
    ).all()
    by_id = {g.id: g for g in groups}
    groups_of: dict[int, list[Group]] = {}  # everyone's groups from this one query, not one each
    for group_id, user in members:
        groups_of.setdefault(user.id, []).append(by_id[group_id])
    people: dict[int, PersonUse] = {}

    def of(user: User) -> PersonUse:
        if user.id not in people:
            people[user.id] = person_use(user, used, groups_of.get(user.id, []))
        return people[user.id]

    by_group = [GroupUse(g, [of(u) for gid, u in members if gid == g.id]) for g in groups]
    grouped = {u.id for _gid, u in members}
    own = sa.or_(*(getattr(User, name).is_not(None) for name in QUOTA_FIELDS))
    loners = db.session.scalars(
        sa.select(User)
        .where(User.id.not_in(grouped) if grouped else sa.true())
        .where(sa.or_(User.id.in_(list(used)), own))
        .order_by(User.username)
    )
    return by_group, [of(u) for u in loners]
