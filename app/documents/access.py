"""Who may read and change which documents and collections: checked on every route, and in
retrieval itself (a passage is only ever looked for among documents its reader may read)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort

from app.extensions import db
from app.models import Collection, CollectionGroup, CollectionReader, Document, GroupMember, User


def manages_knowledge(user: User) -> bool:
    """Admins, and the people they name, create collections and fill them."""
    return bool(user.is_admin or user.manages_knowledge)


def _readable_clause(user_id: int):
    listed = sa.select(CollectionReader.collection_id).where(CollectionReader.user_id == user_id)
    # Readers by group: members of a group the collection names (admin-chosen or directory).
    by_group = (
        sa.select(CollectionGroup.collection_id)
        .join(GroupMember, GroupMember.group_id == CollectionGroup.group_id)
        .where(GroupMember.user_id == user_id)
    )
    return sa.or_(Collection.open_to_all.is_(True), Collection.id.in_(listed), Collection.id.in_(by_group))


def readable_collections(user: User) -> list[Collection]:
    """The collections `user` may ask questions of, by name."""
    query = sa.select(Collection).order_by(Collection.name)
    if not user.is_admin:
        query = query.where(_readable_clause(user.id))
    return list(db.session.scalars(query))


def readable_collection_ids(user_id: int, wanted) -> list[int]:
    """Of the collection ids `wanted`, those `user_id` may read now (in their order)."""
    wanted = [int(i) for i in wanted or [] if isinstance(i, int) and not isinstance(i, bool)]
    if not wanted:
        return []
    user = db.session.get(User, user_id)
    if user is None:
        return []
    query = sa.select(Collection.id).where(Collection.id.in_(wanted))
    if not user.is_admin:
        query = query.where(_readable_clause(user_id))
    found = set(db.session.scalars(query))
    return [i for i in wanted if i in found]


def readable_collection(user: User, collection_id: int) -> Collection:
    """The collection, or 404: one `user` may not read looks exactly like a missing one."""
    query = sa.select(Collection).where(Collection.id == collection_id)
    if not user.is_admin:
        query = query.where(_readable_clause(user.id))
    collection = db.session.scalar(query)
    if collection is None:
        abort(404)
    return collection


def managed_collection(user: User, collection_id: int) -> Collection:
    """The collection for changing it (its documents, readers, name), or 404."""
    if not manages_knowledge(user):
        abort(404)
    collection = db.session.get(Collection, collection_id)
    if collection is None:
        abort(404)
    return collection


def readable_document(user: User, document_id: int) -> Document:
    """A document `user` may read: their own attachment, one sent with a question of a
    conversation shared with them, on the branch its owner shows (a read-only share shows
    that branch, its files too), or one of a collection they may read; 404 otherwise."""
    from app.sharing.services import may_read

    document = db.session.get(Document, document_id)
    if document is None:
        abort(404)
    if document.collection_id is None:
        sent_in_shared = (
            document.message_id is not None
            and document.conversation_id is not None
            and may_read(user.id, document.conversation_id, document.message_id)
        )
        if document.owner_id != user.id and not sent_in_shared:
            abort(404)
        return document
    readable_collection(user, document.collection_id)
    return document


def owned_attachment(user: User, document_id: int) -> Document:
    """`user`'s own attachment (not a collection's document), or 404."""
    document = db.session.get(Document, document_id)
    if document is None or document.collection_id is not None or document.owner_id != user.id:
        abort(404)
    return document
