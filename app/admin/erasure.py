"""Deleting an account for good: a departed employee's conversations, documents (files too),
keys and presets erased; what the server must keep stays, without their name on it.

Kept: the audit entries (by them: their name stays in `actor_name`, `actor_id` goes), the
answers' measurements (`Generation.user_id` goes), the collections they made (no owner) and the
documents in them (the company's knowledge, handed to the admin who deletes the account).
The database's foreign keys do the erasing (ON DELETE CASCADE / SET NULL, app/models.py); the
files, which no foreign key reaches, go once it is committed.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from app import audit
from app.accounts import quotas
from app.admin.users import LastAdmin, OwnAccount
from app.documents.store import remove_files
from app.extensions import db
from app.models import (
    ApiKey,
    Collection,
    Conversation,
    ConversationShare,
    Document,
    GroupMember,
    Message,
    Preset,
    User,
)


@dataclass(frozen=True)
class Erasure:
    """What deleting an account erases, and what it keeps, counted for the confirmation page."""

    conversations: int
    messages: int
    documents: int
    api_keys: int
    presets: int
    shares: int
    groups: int
    collections_kept: int
    collection_documents_kept: int


def _count(query) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0


def what_goes(user: User) -> Erasure:
    own_conversations = sa.select(Conversation.id).where(Conversation.user_id == user.id)
    return Erasure(
        conversations=_count(own_conversations),
        messages=_count(sa.select(Message.id).where(Message.conversation_id.in_(own_conversations))),
        documents=_count(
            sa.select(Document.id).where(Document.owner_id == user.id, Document.collection_id.is_(None))
        ),
        api_keys=_count(sa.select(ApiKey.id).where(ApiKey.user_id == user.id)),
        presets=_count(sa.select(Preset.id).where(Preset.user_id == user.id)),
        # Shared by them (their conversations') or with them.
        shares=_count(
            sa.select(ConversationShare.id).where(
                sa.or_(
                    ConversationShare.user_id == user.id,
                    ConversationShare.conversation_id.in_(own_conversations),
                )
            )
        ),
        groups=_count(sa.select(GroupMember.group_id).where(GroupMember.user_id == user.id)),
        collections_kept=_count(sa.select(Collection.id).where(Collection.owner_id == user.id)),
        collection_documents_kept=_count(
            sa.select(Document.id).where(Document.owner_id == user.id, Document.collection_id.is_not(None))
        ),
    )


def delete_account(user: User, admin: User) -> Erasure:
    """Erase the account and what is theirs alone; never one's own, never the last active admin
    (decided by the DELETE itself, as `users._take_away` decides a demotion)."""
    if user.id == admin.id:
        raise OwnAccount(user.username)
    erased = what_goes(user)
    user_id, username = user.id, user.username
    # The collections' documents stay with their collections: the admin answers for them now.
    db.session.execute(
        sa.update(Document)
        .where(Document.owner_id == user_id, Document.collection_id.is_not(None))
        .values(owner_id=admin.id)
    )
    files = list(db.session.scalars(sa.select(Document.stored_as).where(Document.owner_id == user_id)))
    audit.record("account.delete", username, details={"erased": erased.__dict__})
    other_admins = (
        sa.select(sa.func.count())
        .select_from(User)
        .where(User.is_admin, User.disabled.is_(False), User.pending.is_(False), User.id != user_id)
        .scalar_subquery()
    )
    # PostgreSQL: the admins' rows locked, so a concurrent change waits and then counts anew.
    db.session.execute(sa.select(User.id).where(User.is_admin).with_for_update())
    done = db.session.execute(
        sa.delete(User).where(User.id == user_id, sa.or_(User.is_admin.is_(False), other_admins >= 1)),
        execution_options={"synchronize_session": False},
    )
    if done.rowcount != 1:
        db.session.rollback()
        raise LastAdmin(username)
    db.session.commit()
    db.session.expunge(user)  # gone from the database: never to be refreshed or flushed again
    quotas.ledger().forget_person(user_id)
    remove_files(files)
    return erased
