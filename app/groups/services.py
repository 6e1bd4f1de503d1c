"""Groups as the admin changes them: each change checked, then recorded in the audit log in the
same transaction (one entry per form sent)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from app.accounts.names import accounts_named
from app.admin.services import configured_models
from app.audit import changes, record
from app.errors.inputs import ID_MAX, FormRefused, whole_number
from app.extensions import db
from app.llm import services as llm
from app.llm.catalogue import display_name
from app.models import Collection, CollectionGroup, Group, GroupMember, GroupModel, User

NAME_CHARS = 100
DESCRIPTION_CHARS = 300
DIRECTORY_GROUP_CHARS = 512


class GroupRefused(FormRefused):
    """What is wrong with a group's form, by field."""


@dataclass(frozen=True)
class Member:
    user: User
    from_directory: bool


@dataclass(frozen=True)
class Overview:
    """A group as the list shows it."""

    group: Group
    members: int
    from_directory: int
    models: list[str]  # the names people read
    collections: list[str]


def overviews() -> list[Overview]:
    """Every group, by name, with its counts (four queries whatever the number of groups)."""
    groups = db.session.scalars(sa.select(Group).order_by(Group.name)).all()
    counts = db.session.execute(
        sa.select(GroupMember.group_id, GroupMember.from_directory, sa.func.count()).group_by(
            GroupMember.group_id, GroupMember.from_directory
        )
    ).all()
    models = db.session.execute(sa.select(GroupModel.group_id, GroupModel.model_id)).all()
    collections = db.session.execute(
        sa.select(CollectionGroup.group_id, Collection.name)
        .join(Collection, Collection.id == CollectionGroup.collection_id)
        .order_by(Collection.name)
    ).all()
    names = model_names()
    found = []
    for group in groups:
        mine = {from_directory: count for group_id, from_directory, count in counts if group_id == group.id}
        found.append(
            Overview(
                group=group,
                members=sum(mine.values()),
                from_directory=mine.get(True, 0),
                models=sorted(display_name(m, names) for g, m in models if g == group.id),
                collections=[name for g, name in collections if g == group.id],
            )
        )
    return found


def model_names() -> dict[str, str]:
    """Every model the Models page knows (the engines' and those with settings stored), by id,
    with the name people read."""
    names = llm().catalogue.names()
    for model_id in configured_models():
        names.setdefault(model_id, display_name(model_id, {}))
    return names


# -- the group itself ---------------------------------------------------------------------------
def _described(group: Group) -> dict:
    return {"name": group.name, "description": group.description, "directory_group": group.directory_group}


def save_group(group: Group | None, name: str, description: str, directory_group: str) -> Group:
    """Create (group None) or change a group's name, description and directory group. Raises
    GroupRefused. Changing the directory group takes out the members the old one brought in:
    they come back at their next sign-in if the new one has them."""
    name, description, directory_group = name.strip(), description.strip(), directory_group.strip()
    errors = {}
    if not name:
        errors["name"] = _("Give the group a name.")
    elif len(name) > NAME_CHARS:
        errors["name"] = _("A group's name has 1 to %(max)d characters.", max=NAME_CHARS)
    elif _name_taken(name, group):
        errors["name"] = _("A group named “%(name)s” already exists.", name=name)
    if len(description) > DESCRIPTION_CHARS:
        errors["description"] = _("A description has at most %(max)d characters.", max=DESCRIPTION_CHARS)
    if len(directory_group) > DIRECTORY_GROUP_CHARS:
        errors["directory_group"] = _(
            "A directory group's name has at most %(max)d characters.", max=DIRECTORY_GROUP_CHARS
        )
    if errors:
        raise GroupRefused(errors)
    before = _described(group) if group is not None else None
    if group is None:
        group = Group()
        db.session.add(group)
    dropped = []
    if before is not None and before["directory_group"].casefold() != directory_group.casefold():
        dropped = _drop_directory_members(group)
    group.name, group.description, group.directory_group = name, description, directory_group
    after = _described(group)
    if before is None:
        record("group.create", name, details={"after": after})
    else:
        details = changes(before, after)
        if dropped:
            details["members_removed"] = dropped
        if details["after"]:
            record("group.update", name, details=details)
    try:
        db.session.commit()
    except IntegrityError:  # another admin took the name at the same instant
        db.session.rollback()
        raise GroupRefused({"name": _("A group named “%(name)s” already exists.", name=name)}) from None
    return group


def _name_taken(name: str, group: Group | None) -> bool:
    folded = name.casefold()
    others = db.session.execute(sa.select(Group.id, Group.name)).all()
    return any(n.casefold() == folded for i, n in others if group is None or i != group.id)


def _drop_directory_members(group: Group) -> list[str]:
    rows = db.session.execute(
        sa.select(GroupMember, User.username)
        .join(User, User.id == GroupMember.user_id)
        .where(GroupMember.group_id == group.id, GroupMember.from_directory.is_(True))
    ).all()
    for member, _name in rows:
        db.session.delete(member)
    return sorted(name for _member, name in rows)


def delete_group(group: Group) -> None:
    """The group, its memberships and its choices of models and collections (its members keep
    their accounts; a model it alone listed becomes everyone's)."""
    details = {
        "before": {
            **_described(group),
            "members": _member_names(group),
            "models": _model_ids(group),
            "collections": _collection_names(group),
        }
    }
    record("group.delete", group.name, details=details)
    db.session.delete(group)
    db.session.commit()


# -- members ------------------------------------------------------------------------------------
def members_of(group: Group) -> list[Member]:
    rows = db.session.execute(
        sa.select(User, GroupMember.from_directory)
        .join(GroupMember, GroupMember.user_id == User.id)
        .where(GroupMember.group_id == group.id)
        .order_by(User.username)
    ).all()
    return [Member(user, from_directory) for user, from_directory in rows]


def _member_names(group: Group) -> list[str]:
    return [member.user.username for member in members_of(group)]


def add_members(group: Group, text: str) -> list[str]:
    """Add the accounts named in `text` (usernames separated by commas or spaces, any case);
    returns the names added. Raises GroupRefused naming the unknown ones (nobody added then)."""
    users, wrong = accounts_named(text)
    if not wrong and not users:
        wrong = _("Write the usernames to add, separated by commas or spaces.")
    if wrong:
        raise GroupRefused({"members": wrong})
    members = members_of(group)
    before = [member.user.username for member in members]
    present = {member.user.id for member in members}
    added = sorted(user.username for user in users if user.id not in present)
    for user in users:
        if user.id not in present:
            db.session.add(GroupMember(group_id=group.id, user_id=user.id, from_directory=False))
    if added:
        record("group.members", group.name, details={"before": before, "after": sorted(before + added)})
        db.session.commit()
    return added


def remove_member(group: Group, user_id: int) -> User:
    """Take an account out of the group. Raises GroupRefused for one the directory group brought
    in: the directory decides about it, and would put it back at its next sign-in."""
    member = db.session.get(GroupMember, (group.id, user_id))
    if member is None:
        raise LookupError(user_id)
    user = member.user
    if member.from_directory and group.directory_group:
        raise GroupRefused(
            {
                "members": _(
                    "%(name)s is in this group through the directory group “%(directory)s”: "
                    "change it in the directory.",
                    name=user.username,
                    directory=group.directory_group,
                )
            }
        )
    before = _member_names(group)
    db.session.delete(member)
    record(
        "group.members",
        group.name,
        details={"before": before, "after": [name for name in before if name != user.username]},
    )
    db.session.commit()
    return user


# -- models and collections ---------------------------------------------------------------------
def _model_ids(group: Group) -> list[str]:
    return sorted(db.session.scalars(sa.select(GroupModel.model_id).where(GroupModel.group_id == group.id)))


def model_choices(group: Group) -> list[tuple[str, str, bool]]:
    """(id, name, chosen) of every model the Models page knows, and of any the group lists that
    is no longer found."""
    names = model_names()
    chosen = set(_model_ids(group))
    ids = sorted(set(names) | chosen, key=lambda model_id: display_name(model_id, names).casefold())
    return [(model_id, display_name(model_id, names), model_id in chosen) for model_id in ids]


def set_models(group: Group, model_ids: list[str]) -> None:
    """The models the group's members use; the others of these models' users lose them. Raises
    GroupRefused for a model the server does not know."""
    known = set(model_names()) | set(_model_ids(group))
    unknown = [model_id for model_id in dict.fromkeys(model_ids) if model_id not in known]
    if unknown:
        quoted = ", ".join(_("“%(name)s”", name=model_id[:100]) for model_id in unknown)
        raise GroupRefused({"models": _("No model is named %(names)s on this server.", names=quoted)})
    before, after = _model_ids(group), sorted(set(model_ids))
    if before == after:
        return
    db.session.execute(sa.delete(GroupModel).where(GroupModel.group_id == group.id))
    db.session.add_all(GroupModel(group_id=group.id, model_id=model_id) for model_id in after)
    record("group.models", group.name, details={"before": before, "after": after})
    db.session.commit()


def _collection_names(group: Group) -> list[str]:
    query = (
        sa.select(Collection.name)
        .join(CollectionGroup, CollectionGroup.collection_id == Collection.id)
        .where(CollectionGroup.group_id == group.id)
        .order_by(Collection.name)
    )
    return list(db.session.scalars(query))


def collection_choices(group: Group) -> list[tuple[Collection, bool]]:
    """Every collection, by name, and whether the group reads it."""
    chosen = set(
        db.session.scalars(
            sa.select(CollectionGroup.collection_id).where(CollectionGroup.group_id == group.id)
        )
    )
    collections = db.session.scalars(sa.select(Collection).order_by(Collection.name)).all()
    return [(collection, collection.id in chosen) for collection in collections]


def set_collections(group: Group, collection_ids: list[str]) -> None:
    """The knowledge bases the group's members read (those open to everyone they read anyway).
    Raises GroupRefused for an id that names no collection."""
    wanted = {number for i in collection_ids if (number := whole_number(i, ID_MAX)) is not None}
    found = set(db.session.scalars(sa.select(Collection.id).where(Collection.id.in_(wanted))))
    if len(wanted) != len(set(collection_ids)) or found != wanted:
        raise GroupRefused({"collections": _("Pick knowledge bases from the list.")})
    current = set(
        db.session.scalars(
            sa.select(CollectionGroup.collection_id).where(CollectionGroup.group_id == group.id)
        )
    )
    if current == wanted:
        return
    before = _collection_names(group)
    db.session.execute(sa.delete(CollectionGroup).where(CollectionGroup.group_id == group.id))
    db.session.add_all(CollectionGroup(group_id=group.id, collection_id=cid) for cid in sorted(wanted))
    db.session.flush()
    record("group.collections", group.name, details={"before": before, "after": _collection_names(group)})
    db.session.commit()
