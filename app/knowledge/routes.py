"""The pages of shared knowledge, for admins and the people they name. Anyone else gets 404 on
every one of them: a collection they may not manage looks exactly like a missing one."""

from __future__ import annotations

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from app.documents import access
from app.documents.extract import DocumentError
from app.documents.messages import document_error_message
from app.documents.routes import takes_upload, too_large_message
from app.documents.store import clean_filename
from app.knowledge import bp, services
from app.knowledge.forms import CollectionForm


@bp.before_request
def _managers_only() -> None:
    """Every page here is a manager's, a page added later too, whatever its method."""
    if current_user.is_authenticated and not access.manages_knowledge(current_user):
        abort(404)


@bp.get("/knowledge")
def index():
    """Every collection: who may read it, its documents and their state."""
    return render_template("knowledge/index.html", overviews=services.overviews())


def _form_page(form: CollectionForm, collection=None):
    status = 400 if form.errors else 200
    return render_template("knowledge/form.html", form=form, collection=collection), status


def _save(form: CollectionForm, collection=None):
    """Check the form and save it: the collection, or None with the form's errors filled."""
    if not form.validate_on_submit():
        return None
    try:
        return services.save_collection(
            current_user,
            collection,
            form.name.data,
            form.description.data,
            form.access.data == "all",
            form.readers.data,
        )
    except services.CollectionRefused as refused:
        for field, message in refused.errors.items():
            getattr(form, field).errors.append(message)
        return None


@bp.route("/knowledge/new", methods=["GET", "POST"])
def create():
    """A new collection."""
    form = CollectionForm()
    collection = _save(form)
    if collection is None:
        return _form_page(form)
    flash(_("Collection “%(name)s” created: add its documents.", name=collection.name), "success")
    return redirect(url_for("knowledge.collection", collection_id=collection.id))


@bp.route("/knowledge/<int:collection_id>/edit", methods=["GET", "POST"])
def edit(collection_id: int):
    """A collection's name, description and readers."""
    collection = access.managed_collection(current_user, collection_id)
    form = CollectionForm(
        data=None
        if request.method == "POST"
        else {
            "name": collection.name,
            "description": collection.description,
            "access": "all" if collection.open_to_all else "listed",
            "readers": ", ".join(services.reader_names(collection)),
        }
    )
    if _save(form, collection) is None:
        return _form_page(form, collection)
    flash(_("Collection “%(name)s” saved.", name=collection.name), "success")
    return redirect(url_for("knowledge.collection", collection_id=collection.id))


@bp.post("/knowledge/<int:collection_id>/delete")
def delete(collection_id: int):
    """A collection, its documents and their files."""
    collection = access.managed_collection(current_user, collection_id)
    name = collection.name
    services.delete_collection(collection)
    flash(_("Collection “%(name)s” deleted, with its documents.", name=name), "success")
    return redirect(url_for("knowledge.index"))


@bp.get("/knowledge/<int:collection_id>")
def collection(collection_id: int):
    """A collection's documents, each with its state; uploading more."""
    collection = access.managed_collection(current_user, collection_id)
    return render_template(
        "knowledge/collection.html",
        collection=collection,
        readers=services.reader_names(collection),
        reader_groups=services.reader_groups(collection),
        documents=services.documents_of(collection),
        state_label=services.state_label,
        size=services.size_text,
        finished=services.FINISHED,
    )


@bp.get("/knowledge/<int:collection_id>/documents")
def document_states(collection_id: int):
    """The state of each of a collection's documents, for its page to refresh while they index."""
    collection = access.managed_collection(current_user, collection_id)
    return jsonify(documents=[services.document_state(d) for d in services.documents_of(collection)])


def _received(name: str) -> list | None:
    """The files sent as `name`; None: the request was over the upload limit."""
    try:
        return [upload for upload in request.files.getlist(name) if upload.filename]
    except RequestEntityTooLarge:
        return None


def _files_too_large():
    """Files over the upload limit together: said on the collection's page, nothing stored."""
    limit = current_app.config["MAX_UPLOAD_MB"]
    flash(
        _("These files weigh more than %(max)s MB together: send them in several goes.", max=limit), "error"
    )
    return redirect(url_for("knowledge.collection", collection_id=request.view_args["collection_id"]))


@bp.post("/knowledge/<int:collection_id>/documents")
@takes_upload(on_too_large=_files_too_large)
def upload(collection_id: int):
    """Several files at once into the collection; each refused one says why, the others go in."""
    files = _received("files")  # first: a request without its token is refused as anywhere else
    collection = access.managed_collection(current_user, collection_id)
    if files is None:
        limit = current_app.config["MAX_UPLOAD_MB"]
        flash(
            _("These files weigh more than %(max)s MB together: send them in several goes.", max=limit),
            "error",
        )
    elif not files:
        flash(_("Choose the files to add."), "error")
    else:
        stored, refusals = services.add_documents(current_user, collection, files)
        for refusal in refusals:
            flash(refusal, "error")
        if stored:
            flash(
                ngettext(
                    "%(num)d document added: it is being indexed.",
                    "%(num)d documents added: they are being indexed.",
                    len(stored),
                ),
                "success",
            )
    return redirect(url_for("knowledge.collection", collection_id=collection.id))


def _managed_document(collection_id: int, document_id: int):
    collection = access.managed_collection(current_user, collection_id)
    document = services.collection_document(collection, document_id)
    if document is None:
        abort(404)
    return collection, document


def _file_too_large():
    flash(too_large_message(), "error")
    return redirect(url_for("knowledge.collection", collection_id=request.view_args["collection_id"]))


@bp.post("/knowledge/<int:collection_id>/documents/<int:document_id>/replace")
@takes_upload(on_too_large=_file_too_large)
def replace(collection_id: int, document_id: int):
    """A new version of a document: the old one and its passages go once the new one is stored."""
    files = _received("file")  # first: a request without its token is refused as anywhere else
    collection, document = _managed_document(collection_id, document_id)
    if files is None:
        flash(too_large_message(), "error")
    elif not files:
        flash(_("Choose the new version of “%(name)s”.", name=document.filename), "error")
    else:
        try:
            new = services.replace_document(document, files[0])
        except DocumentError as error:
            flash(document_error_message(error, clean_filename(files[0].filename)), "error")
        else:
            flash(_("“%(name)s” replaced: the new version is being indexed.", name=new.filename), "success")
    return redirect(url_for("knowledge.collection", collection_id=collection.id))


@bp.post("/knowledge/<int:collection_id>/documents/<int:document_id>/delete")
def delete_document(collection_id: int, document_id: int):
    """A document of the collection, its passages and its file."""
    collection, document = _managed_document(collection_id, document_id)
    name = document.filename
    services.delete_document(document)
    flash(_("“%(name)s” deleted.", name=name), "success")
    return redirect(url_for("knowledge.collection", collection_id=collection.id))
