"""Which models a person may use: the one rule every entry point asks (chat, compare, the API,
benchmarks, the model lists).

A model that some group lists (GroupModel) is for the members of those groups only; a model no
group lists is for everyone; admins use every model (they must be able to try one before opening
it to a group)."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import Group, GroupMember, GroupModel, User


def groups_of(user: User) -> list[Group]:
    """The groups `user` belongs to (chosen by the admin or from the directory), by name."""
    if user is None or getattr(user, "id", None) is None:
        return []
    query = (
        sa.select(Group)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.user_id == user.id)
        .order_by(Group.name)
    )
    return list(db.session.scalars(query))


def restricted_models() -> set[str]:
    """The models some group lists: everyone else is kept from them."""
    return set(db.session.scalars(sa.select(GroupModel.model_id).distinct()))


def usable_models(user: User) -> set[str] | None:
    """The restricted models `user` may use through their groups, or None for no restriction
    (admins). A model outside `restricted_models()` is usable by everyone and is not listed here:
    ask `may_use_model` for one model."""
    if user is None or getattr(user, "id", None) is None:
        return set()
    if user.is_admin:
        return None
    query = (
        sa.select(GroupModel.model_id)
        .join(GroupMember, GroupMember.group_id == GroupModel.group_id)
        .where(GroupMember.user_id == user.id)
        .distinct()
    )
    return set(db.session.scalars(query))


def may_use_model(user: User, model_id: str) -> bool:
    """Whether `user` may see and use `model_id`."""
    if user is not None and getattr(user, "is_admin", False):
        return True
    listing_groups = sa.select(GroupModel.group_id).where(GroupModel.model_id == model_id)
    if db.session.scalar(sa.select(sa.exists(listing_groups))) is False:
        return True
    if user is None or getattr(user, "id", None) is None:
        return False
    member = sa.select(GroupMember.user_id).where(
        GroupMember.user_id == user.id, GroupMember.group_id.in_(listing_groups)
    )
    return bool(db.session.scalar(sa.select(sa.exists(member))))


def model_filter(user: User):
    """A test `model_id -> bool` for filtering a whole list with two queries, not one per model."""
    if user is not None and getattr(user, "is_admin", False):
        return lambda model_id: True
    restricted = restricted_models()
    allowed = usable_models(user) or set()
    return lambda model_id: model_id not in restricted or model_id in allowed


def groups_using(model_ids) -> dict[str, list[Group]]:
    """For each model id some group lists, those groups (by name): the Models page's "who"."""
    wanted = list(model_ids)
    rows = db.session.execute(
        sa.select(GroupModel.model_id, Group)
        .join(Group, Group.id == GroupModel.group_id)
        .where(GroupModel.model_id.in_(wanted))
        .order_by(Group.name)
    )
    found: dict[str, list[Group]] = {}
    for model_id, group in rows:
        found.setdefault(model_id, []).append(group)
    return found
