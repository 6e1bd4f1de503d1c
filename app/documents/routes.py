"""Attachments: upload (progress, refusals in the user's language), download, removal."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from app.audit import record
from app.documents import access, indexing, store
from app.documents.extract import DocumentError
from app.documents.messages import document_error_message
from app.errors import render_error
from app.extensions import db
from app.models import Collection, Document

bp = Blueprint("documents", __name__)

# Multipart framing around the file (boundaries, headers, the other fields).
_FORM_OVERHEAD = 64 * 1024
# Types a browser may be told; anything else downloads as bytes (never rendered: nosniff).
_SAFE_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "odt": "application/vnd.oasis.opendocument.text",
    "txt": "text/plain; charset=utf-8",
    "md": "text/plain; charset=utf-8",
    "csv": "text/plain; charset=utf-8",
    "html": "text/plain; charset=utf-8",  # a document's HTML is never a page of this site
}


def takes_upload(view=None, *, on_too_large=None):
    """Mark a view that takes files: its requests may be MAX_UPLOAD_MB (every other request
    keeps 1 MB; see `lift_upload_limit`). `on_too_large()`: its answer to a bigger request."""

    def mark(view):
        view.takes_upload = True
        view.on_too_large = on_too_large
        return view

    return mark(view) if view is not None else mark


def lift_upload_limit() -> None:
    """Before anything reads the body: the request of a view marked `takes_upload` may be
    MAX_UPLOAD_MB. Run by the app before every other check, Flask-WTF's CSRF check among them,
    which reads the form (under the 1 MB limit it would refuse any bigger file)."""
    view = current_app.view_functions.get(request.endpoint)
    if getattr(view, "takes_upload", False):
        request.max_content_length = store.limit_bytes() + _FORM_OVERHEAD


def too_large_message(filename: str = "") -> str:
    error = DocumentError("too_large", mb=0, max_mb=current_app.config["MAX_UPLOAD_MB"])
    return (
        document_error_message(error, filename)
        if filename
        else _("This file is larger than %(max)s MB, the limit.", max=current_app.config["MAX_UPLOAD_MB"])
    )


@bp.app_errorhandler(RequestEntityTooLarge)
def too_large(error):
    """A request over its limit: an upload's says the upload limit (it may be refused before
    its view runs: the CSRF check reads the form first); the others, the generic words. A
    view may answer it its own way (`takes_upload(on_too_large=...)`)."""
    view = current_app.view_functions.get(request.endpoint)
    if not getattr(view, "takes_upload", False):
        return render_error(413)
    answer = getattr(view, "on_too_large", None)
    return answer() if answer else render_error(413, too_large_message())


def document_as_dict(document: Document) -> dict:
    error = ""
    if document.state == "error":
        error = document_error_message(
            DocumentError(document.error_code, **(document.error_values or {})), document.filename
        )
    return {
        "id": document.id,
        "name": document.filename,
        "kind": document.kind,
        "size_bytes": document.size_bytes,
        "state": document.state,
        "pages": document.pages,
        "chunks": document.chunks,
        "error": error,
        "collection_id": document.collection_id,
        "url": url_for("documents.download", document_id=document.id),
    }


def receive(collection_id: int | None = None, owner=None):
    """The uploaded `file`, stored and queued for indexing: (document, None) or (None, refusal).
    `owner`: who sends it (the signed-in user; an API key's owner)."""
    owner = owner or current_user
    try:
        upload = request.files.get("file")
    except RequestEntityTooLarge:
        return None, render_error(413, too_large_message())
    if upload is None or not upload.filename:
        return None, render_error(400, _("Choose a file to send."))
    if collection_id is not None:  # shared knowledge: in the audit log, committed with the document
        collection = db.session.get(Collection, collection_id)
        details = {"collection": collection.name if collection else ""}
        record("document.upload", store.clean_filename(upload.filename), actor=owner, details=details)
    try:
        document = store.save(owner.id, upload.filename, upload.stream, collection_id=collection_id)
    except DocumentError as error:
        status = 413 if error.code == "too_large" else 400
        return None, render_error(
            status, document_error_message(error, store.clean_filename(upload.filename))
        )
    indexing.indexer().add(document.id)
    return document, None


@bp.post("/documents")
@takes_upload
def upload():
    """Attach a file to the next question: stored, then indexed in the background."""
    document, refusal = receive()
    if refusal is not None:
        return refusal
    return jsonify(document=document_as_dict(document)), 201


@bp.get("/documents/<int:document_id>")
def show(document_id: int):
    """A document's state, for the page that waits for its indexing."""
    return jsonify(document=document_as_dict(access.readable_document(current_user, document_id)))


@bp.get("/documents/<int:document_id>/file")
def download(document_id: int):
    """The file as uploaded: always a download (never shown by the browser as a page of this
    site), its type from its content, never sniffed."""
    document = access.readable_document(current_user, document_id)
    response = send_file(
        store.path_of(document),
        mimetype=_SAFE_TYPES.get(document.kind, "application/octet-stream"),
        as_attachment=True,
        download_name=document.filename,
        max_age=0,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/documents/<int:document_id>/delete")
def delete(document_id: int):
    """Remove one of the user's attachments (a collection's documents: its page)."""
    store.delete(access.owned_attachment(current_user, document_id))
    return "", 204
