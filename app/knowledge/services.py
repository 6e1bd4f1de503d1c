"""Collections and their documents: made, changed, filled, emptied. Who may do it is checked
by the routes through `app.documents.access`; here, what a change means."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from flask_babel import format_decimal
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from app.accounts.names import accounts_named
from app.audit import changes, record
from app.documents import indexing, store
from app.documents.extract import DocumentError
from app.documents.messages import document_error_message
from app.errors.inputs import FormRefused
from app.extensions import db
from app.models import (
    Collection,
    CollectionGroup,
    CollectionReader,
    Conversation,
    Document,
    Group,
    User,
)

FINISHED = ("ready", "error")


class CollectionRefused(FormRefused):
    """A collection's change the manager must correct, by field."""


@dataclass
class Overview:
    """A collection as the list of collections shows it."""

    collection: Collection
    readers: list[str]
    groups: list[str] = field(default_factory=list)  # the groups that read it (the Groups page)
    documents: int = 0
    states: dict[str, int] = field(default_factory=dict)


def overviews() -> list[Overview]:
    """Every collection, by name, with its readers, the groups that read it and how many of its
    documents are in which state (four queries whatever the number of collections)."""
    collections = list(db.session.scalars(sa.select(Collection).order_by(Collection.name)))
    found = {c.id: Overview(c, []) for c in collections}
    readers = db.session.execute(
        sa.select(CollectionReader.collection_id, User.username)
        .join(User, User.id == CollectionReader.user_id)
        .order_by(User.username)
    )
    for collection_id, username in readers:
        found[collection_id].readers.append(username)
    groups = db.session.execute(
        sa.select(CollectionGroup.collection_id, Group.name)
        .join(Group, Group.id == CollectionGroup.group_id)
        .order_by(Group.name)
    )
    for collection_id, group_name in groups:
        found[collection_id].groups.append(group_name)
    counts = db.session.execute(
        sa.select(Document.collection_id, Document.state, sa.func.count())
        .where(Document.collection_id.is_not(None))
        .group_by(Document.collection_id, Document.state)
    )
    for collection_id, state, count in counts:
        if collection_id in found:
            found[collection_id].documents += count
            found[collection_id].states[state] = count
    return [found[c.id] for c in collections]


def reader_names(collection: Collection) -> list[str]:
    query = (
        sa.select(User.username)
        .join(CollectionReader, CollectionReader.user_id == User.id)
        .where(CollectionReader.collection_id == collection.id)
        .order_by(User.username)
    )
    return list(db.session.scalars(query))


def reader_groups(collection: Collection) -> list[str]:
    """The groups whose members read the collection, chosen on the Groups page."""
    query = (
        sa.select(Group.name)
        .join(CollectionGroup, CollectionGroup.group_id == Group.id)
        .where(CollectionGroup.collection_id == collection.id)
        .order_by(Group.name)
    )
    return list(db.session.scalars(query))


def _readers(text: str, read_by_groups: bool = False) -> tuple[list[User], str]:
    """The accounts named in `text` (usernames separated by commas or spaces, any case), and
    what is wrong with the list ("" when nothing; nobody listed is right for a collection that
    groups read)."""
    users, wrong = accounts_named(text)
    if not wrong and not users and not read_by_groups:
        return users, _("List who may read it, or open it to everyone.")
    return users, wrong


def save_collection(
    owner: User,
    collection: Collection | None,
    name: str,
    description: str,
    open_to_all: bool,
    readers_text: str,
) -> Collection:
    """Create (collection None) or change a collection. Raises CollectionRefused."""
    errors = {}
    folded = name.casefold()
    others = db.session.execute(sa.select(Collection.id, Collection.name)).all()
    if any(n.casefold() == folded for i, n in others if collection is None or i != collection.id):
        errors["name"] = _("A collection already has this name.")
    by_groups = collection is not None and bool(reader_groups(collection))
    readers, wrong = ([], "") if open_to_all else _readers(readers_text, by_groups)
    if wrong:
        errors["readers"] = wrong
    if errors:
        raise CollectionRefused(errors)
    before = _described(collection) if collection is not None else None
    if collection is None:
        collection = Collection(owner_id=owner.id)
        db.session.add(collection)
    collection.name, collection.description, collection.open_to_all = name, description, open_to_all
    collection.readers = [CollectionReader(user_id=user.id) for user in readers]
    after = {
        "name": name,
        "description": description,
        "open_to_all": open_to_all,
        "readers": sorted(user.username for user in readers),
    }
    if before is None:
        record("collection.create", name, details={"after": after})
    else:
        record("collection.update", name, details=changes(before, after))
    try:
        db.session.commit()
    except IntegrityError:  # another manager took the name at the same instant
        db.session.rollback()
        raise CollectionRefused({"name": _("A collection already has this name.")}) from None
    return collection


def _described(collection: Collection) -> dict:
    """What a collection's form changes, as the audit log compares it."""
    return {
        "name": collection.name,
        "description": collection.description,
        "open_to_all": collection.open_to_all,
        "readers": reader_names(collection),
    }


def delete_collection(collection: Collection) -> None:
    """The collection, its documents and their passages (the database cascades), and their files."""
    stored = list(
        db.session.scalars(sa.select(Document.stored_as).where(Document.collection_id == collection.id))
    )
    record("collection.delete", collection.name, details={"documents": len(stored)})
    db.session.execute(sa.delete(Collection).where(Collection.id == collection.id))
    db.session.commit()
    folder = store.folder()
    for name in stored:
        (folder / name).unlink(missing_ok=True)


def documents_of(collection: Collection) -> list[Document]:
    query = sa.select(Document).where(Document.collection_id == collection.id).order_by(Document.filename)
    return list(db.session.scalars(query))


def collection_document(collection: Collection, document_id: int) -> Document | None:
    document = db.session.get(Document, document_id)
    return document if document is not None and document.collection_id == collection.id else None


def add_documents(user: User, collection: Collection, uploads) -> tuple[list[Document], list[str]]:
    """Each uploaded file stored into the collection and queued for indexing. A file refused
    leaves nothing behind and says why; the others still go in. Returns (stored, refusals)."""
    stored, refusals = [], []
    for upload in uploads:
        # In the transaction store.save commits the document with (a refused file: rolled back).
        record(
            "document.upload", store.clean_filename(upload.filename), details={"collection": collection.name}
        )
        try:
            document = store.save(user.id, upload.filename, upload.stream, collection_id=collection.id)
        except DocumentError as error:
            refusals.append(document_error_message(error, store.clean_filename(upload.filename)))
            continue
        indexing.indexer().add(document.id)
        stored.append(document)
    return stored, refusals


def replace_document(document: Document, upload) -> Document:
    """A new version of a document: stored and indexed; the old one and its passages go.
    Raises DocumentError (the old version then stays)."""
    # Committed with the new version (store.save's transaction); the old one goes after it.
    details = {"collection": document.collection.name, "before": {"filename": document.filename}}
    details["after"] = {"filename": store.clean_filename(upload.filename)}
    record("document.replace", document.filename, details=details)
    new = store.replace_file(document, upload.filename, upload.stream)
    indexing.indexer().add(new.id)
    return new


def delete_document(document: Document) -> None:
    record("document.delete", document.filename, details={"collection": document.collection.name})
    store.delete(document)  # commits the entry with the deletion


def state_label(document: Document) -> str:
    """A document's state as its collection's page says it."""
    if document.state == "ready":
        return _("Indexed")
    if document.state == "error":
        error = DocumentError(document.error_code or "corrupt", **(document.error_values or {}))
        return document_error_message(error, document.filename)
    if document.state == "indexing":
        if document.pages:
            return _(
                "Indexing: page %(done)s of %(pages)s, %(chunks)s passages",
                done=format_decimal(document.pages_done),
                pages=format_decimal(document.pages),
                chunks=format_decimal(document.chunks),
            )
        return _("Indexing…")
    return _("Waiting to be indexed")


def choose_for(conversation: Conversation, collection_ids: list[int]) -> None:
    """The collections a conversation's questions are answered from (already checked readable)."""
    conversation.collection_ids = list(collection_ids)
    db.session.commit()


def size_text(size_bytes: int) -> str:
    """A file's size as people read it: "820 KB", "1.4 MB" (in the language's way)."""
    if size_bytes < 1024 * 1024:
        return _("%(size)s KB", size=format_decimal(max(1, round(size_bytes / 1024))))
    return _("%(size)s MB", size=format_decimal(round(size_bytes / (1024 * 1024), 1)))


def document_state(document: Document) -> dict:
    """What the collection's page refreshes while a document is indexed."""
    return {
        "id": document.id,
        "state": document.state,
        "label": state_label(document),
        "pages": format_decimal(document.pages) if document.pages is not None else "",
        "chunks": format_decimal(document.chunks),
        "finished": document.state in FINISHED,
    }
