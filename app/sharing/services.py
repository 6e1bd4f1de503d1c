"""Sharing a conversation read-only: with named colleagues or a group's members, until the
owner withdraws it. A reader sees the owner's branch as it is now and may copy it into a
conversation of their own; the original stays the owner's alone (every chat route checks
ownership, never shares)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from app import audit
from app.accounts.names import SEPARATORS
from app.auth.services import find_user
from app.chat.services import thread_of
from app.chat.titles import plain_title
from app.extensions import db
from app.llm.types import Outcome
from app.models import Conversation, ConversationShare, Group, GroupMember, Message, User, utcnow

MAX_NAMES = 20


class ShareRefused(ValueError):
    """A share that cannot be made, in words for the person sharing."""


def _readers_clause(user_id: int):
    """The conversations shared with `user_id`: by name, or with a group they belong to now
    (leaving the group ends the access at once: nothing is copied at share time)."""
    groups = sa.select(GroupMember.group_id).where(GroupMember.user_id == user_id)
    shared = sa.select(ConversationShare.conversation_id).where(
        sa.or_(ConversationShare.user_id == user_id, ConversationShare.group_id.in_(groups))
    )
    return sa.and_(Conversation.id.in_(shared), Conversation.user_id != user_id)


def shared_with(user: User) -> list[Conversation]:
    """The others' conversations `user` may read, newest first, their owners read with them (the
    list names each)."""
    query = (
        sa.select(Conversation)
        .where(_readers_clause(user.id))
        .options(joinedload(Conversation.owner))
        .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
    )
    return list(db.session.scalars(query))


def _shared(user_id: int, conversation_id: int) -> Conversation | None:
    query = sa.select(Conversation).where(Conversation.id == conversation_id, _readers_clause(user_id))
    return db.session.scalar(query)


def may_read(user_id: int, conversation_id: int, message_id: int | None = None) -> bool:
    """Whether a colleague may read another's conversation and, given `message_id`, that message
    on the branch its owner shows (documents.access asks it for the files sent with its
    questions: a version the owner edited away, and its file, stay the owner's)."""
    conversation = _shared(user_id, conversation_id)
    if conversation is None:
        return False
    return message_id is None or any(message.id == message_id for message in thread_of(conversation))


def shared_conversation(user: User, conversation_id: int) -> Conversation:
    """A conversation shared with `user`, or 404: one not (or no longer) shared looks exactly
    like a missing one."""
    return _shared(user.id, conversation_id) or abort(404)


def shares_of(conversation: Conversation) -> list[ConversationShare]:
    """Who a conversation is shared with: people by name, then groups."""
    shares = db.session.scalars(
        sa.select(ConversationShare)
        .where(ConversationShare.conversation_id == conversation.id)
        .options(joinedload(ConversationShare.user), joinedload(ConversationShare.group))  # named each
    )
    return sorted(shares, key=lambda s: (s.user is None, _whom(s).casefold()))


def _whom(found: ConversationShare) -> str:
    return found.user.username if found.user else found.group.name


def share(conversation: Conversation, usernames: str = "", group_name: str = "") -> list[str]:
    """Share with the colleagues named in `usernames` and the group `group_name`; the names of
    those it was not shared with yet. All or nothing: ShareRefused names the first wrong one.
    Each new share is recorded in the audit log, in its transaction."""
    names = [n for n in SEPARATORS.split(usernames.strip()) if n]
    group_name = " ".join(group_name.split())
    if not names and not group_name:
        raise ShareRefused(_("Name a colleague or a group to share with."))
    if len(names) > MAX_NAMES:
        raise ShareRefused(_("At most %(max)d colleagues at once.", max=MAX_NAMES))
    people = []
    for name in names:
        person = find_user(name)
        if person is None:
            raise ShareRefused(_("Nobody here is called “%(name)s”.", name=name))
        if person.id == conversation.user_id:
            raise ShareRefused(_("This conversation is already yours: share it with someone else."))
        people.append(person)
    group = None
    if group_name:
        group = db.session.scalar(sa.select(Group).where(sa.func.lower(Group.name) == group_name.lower()))
        if group is None or not _may_share_with(conversation.owner, group):
            # (the same words for a group one is not in: its existence is not told either)
            raise ShareRefused(_("There is no group called “%(name)s”.", name=group_name))
    # Ids, not objects: a second try starts from a rolled-back session.
    conversation_id = conversation.id
    people_ids = {p.id: p.username for p in people}
    group_ids = {group.id: group.name} if group is not None else {}
    for attempt in (1, 2):
        try:
            added = _add_shares(db.session.get(Conversation, conversation_id), people_ids, group_ids)
            db.session.commit()
            return added
        except IntegrityError:
            # The same share made meanwhile (a double click, another tab): the unique indexes
            # refused this one, and this request's audit entries went with it. Once more, it
            # finds that share and adds the others.
            db.session.rollback()
            if attempt == 2:
                raise
    return []


def _may_share_with(owner: User, group: Group) -> bool:
    """A group one belongs to (an admin: any): otherwise anyone could post into the reading
    list of a group they have nothing to do with."""
    if owner.is_admin:
        return True
    membership = sa.select(GroupMember).where(
        GroupMember.group_id == group.id, GroupMember.user_id == owner.id
    )
    return db.session.scalar(membership) is not None


def _add_shares(conversation: Conversation, people: dict[int, str], groups: dict[int, str]) -> list[str]:
    """The shares not made yet, each with its audit entry; the names of those added."""
    existing = shares_of(conversation)
    added = []
    for user_id, username in people.items():
        if not any(s.user_id == user_id for s in existing):
            db.session.add(ConversationShare(conversation_id=conversation.id, user_id=user_id))
            _record("share.create", conversation, user=username)
            added.append(username)
    for group_id, name in groups.items():
        if not any(s.group_id == group_id for s in existing):
            db.session.add(ConversationShare(conversation_id=conversation.id, group_id=group_id))
            _record("share.create", conversation, group=name)
            added.append(name)
    db.session.flush()
    return added


def withdraw(conversation: Conversation, share_id: int) -> str:
    """End one share of the conversation (404 for any other's); whom it was with. The reader
    loses access at their next request: every read checks the shares."""
    found = db.session.scalar(
        sa.select(ConversationShare).where(
            ConversationShare.id == share_id, ConversationShare.conversation_id == conversation.id
        )
    )
    if found is None:
        abort(404)
    whom = _whom(found)
    db.session.delete(found)
    _record("share.withdraw", conversation, **({"user": whom} if found.user else {"group": whom}))
    db.session.commit()
    return whom


def _record(action: str, conversation: Conversation, **whom: str) -> None:
    """The audit entry of a share: the conversation as its owner reads it (its title), its id,
    and whom it is (no longer) shared with."""
    target = plain_title(conversation.title) or f"#{conversation.id}"
    audit.record(action, target, details={"conversation": conversation.id, **whom})


def copy_for(user: User, conversation: Conversation, model: str) -> Conversation:
    """A conversation of `user`'s own with the branch shown of `conversation` (its questions
    and answers, their passages and thinking), answered from now on by `model`. Files sent with
    the questions stay the owner's; an answer being written is copied as it stands, marked
    interrupted."""
    copy = Conversation(
        user_id=user.id,
        title=conversation.title,
        model=model,
        system_prompt=conversation.system_prompt,
        think=conversation.think,
        options=dict(conversation.options or {}),
    )
    db.session.add(copy)
    db.session.flush()
    parent_id = None
    for message in thread_of(conversation):
        state = Outcome.INTERRUPTED.value if message.state == Outcome.GENERATING.value else message.state
        twin = Message(
            conversation_id=copy.id,
            parent_id=parent_id,
            role=message.role,
            content=message.content,
            thinking=message.thinking,
            state=state,
            model=message.model,
            error=message.error,
            stats=dict(message.stats or {}),
            context=message.context,
            sources=dict(message.sources or {}),
            created_at=message.created_at,
        )
        db.session.add(twin)
        db.session.flush()
        parent_id = twin.id
    copy.leaf_id = parent_id
    copy.updated_at = utcnow()
    db.session.commit()
    return copy
