"""`/api/v1/documents` and `/api/v1/collections`: a key's owner uploads, lists, follows and
removes their documents, and reads the collections open to them (documented in openapi.py).
The checks are the pages' own (app/documents/access.py): another's document, or a collection
its reader may not read, is answered exactly like a missing one."""

from __future__ import annotations

import sqlalchemy as sa
from flask import g, jsonify, request
from flask_babel import gettext as _

from app.api import bp
from app.api.answers import Refused
from app.documents import access, store
from app.documents.routes import document_as_dict, receive, takes_upload
from app.extensions import db
from app.models import Document

PER_PAGE = 50
MAX_PER_PAGE = 100
MAX_PAGE = 100_000


def _whole_number(name: str, default: int, largest: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= largest:
        raise Refused(400, _("“%(name)s” is a whole number from 1 to %(max)d.", name=name, max=largest))
    return value


@bp.post("/documents")
@takes_upload
def upload_document():
    """A file for the key's owner (multipart `file`): stored, then indexed in the background;
    name it in `document_ids` to ask about it."""
    document, refusal = receive(owner=g.api_user)
    if refusal is not None:
        return refusal
    return jsonify(document=document_as_dict(document)), 201


@bp.get("/documents")
def documents():
    """The owner's attachments and the documents of the collections they may read, newest
    first, a page at a time (`page`, `per_page`)."""
    page = _whole_number("page", 1, MAX_PAGE)
    per_page = _whole_number("per_page", PER_PAGE, MAX_PER_PAGE)
    user = g.api_user
    readable = [c.id for c in access.readable_collections(user)]
    mine = sa.and_(Document.owner_id == user.id, Document.collection_id.is_(None))
    where = sa.or_(mine, Document.collection_id.in_(readable)) if readable else mine
    total = db.session.scalar(sa.select(sa.func.count(Document.id)).where(where))
    found = db.session.scalars(
        sa.select(Document)
        .where(where)
        .order_by(Document.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return jsonify(documents=[document_as_dict(d) for d in found], page=page, per_page=per_page, total=total)


@bp.get("/documents/<int:document_id>")
def document(document_id: int):
    """One document: its state and progress (`state`, `pages`, `chunks`, `error`)."""
    return jsonify(document=document_as_dict(access.readable_document(g.api_user, document_id)))


@bp.delete("/documents/<int:document_id>")
def delete_document(document_id: int):
    """One of the owner's attachments, its passages and its file (a collection's: its page)."""
    store.delete(access.owned_attachment(g.api_user, document_id))
    return "", 204


@bp.get("/collections")
def collections():
    """The collections the owner may name in `collections`, with how many documents each has."""
    found = access.readable_collections(g.api_user)
    counts = dict(
        db.session.execute(
            sa.select(Document.collection_id, sa.func.count(Document.id))
            .where(Document.collection_id.in_([c.id for c in found]))
            .group_by(Document.collection_id)
        ).all()
    )
    return jsonify(
        collections=[
            {"id": c.id, "name": c.name, "description": c.description, "documents": counts.get(c.id, 0)}
            for c in found
        ]
    )


@bp.post("/collections/<int:collection_id>/documents")
@takes_upload
def upload_to_collection(collection_id: int):
    """A file into a collection, for the people who manage shared knowledge."""
    collection = access.managed_collection(g.api_user, collection_id)
    document, refusal = receive(collection_id=collection.id, owner=g.api_user)
    if refusal is not None:
        return refusal
    return jsonify(document=document_as_dict(document)), 201
