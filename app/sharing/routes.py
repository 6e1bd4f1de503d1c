"""Sharing a conversation read-only, reading and copying what colleagues shared, and importing
conversations from another chat's export."""

from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from app import audit
from app.accounts.access import groups_of
from app.answers.asking import field, offered_to
from app.chat import services as chat
from app.documents.routes import takes_upload
from app.documents.store import limit_bytes
from app.errors import render_error, wants_json
from app.extensions import db
from app.llm import services as llm
from app.sharing import bp, imports, services


def _shares_page(conversation, error: str = "", status: int = 200):
    return (
        render_template(
            "sharing/shares.html",
            conversation=conversation,
            shares=services.shares_of(conversation),
            my_groups=groups_of(current_user),  # offered as the group field's suggestions
            error=error,
            usernames=field("usernames") if error else "",
            group=field("group") if error else "",
        ),
        status,
    )


def _shares_as_dict(conversation) -> dict:
    return {
        "shares": [
            {
                "id": s.id,
                "user": s.user.username if s.user else None,
                "group": s.group.name if s.group else None,
            }
            for s in services.shares_of(conversation)
        ]
    }


@bp.get("/conversations/<int:conversation_id>/shares")
def shares(conversation_id: int):
    """Who the owner's conversation is shared with, and the form to share it further."""
    conversation = chat.owned_conversation(current_user, conversation_id)
    if wants_json():
        return jsonify(_shares_as_dict(conversation))
    return _shares_page(conversation)


@bp.post("/conversations/<int:conversation_id>/shares")
def share(conversation_id: int):
    """Share the owner's conversation read-only with colleagues (`usernames`) or a `group`."""
    conversation = chat.owned_conversation(current_user, conversation_id)
    try:
        added = services.share(conversation, field("usernames"), field("group"))
    except services.ShareRefused as refused:
        if wants_json():
            return render_error(400, str(refused))
        return _shares_page(conversation, str(refused), 400)
    if wants_json():
        return jsonify(_shares_as_dict(conversation) | {"added": added}), 201 if added else 200
    if added:
        flash(_("Shared with %(names)s, read-only.", names=", ".join(added)))
    else:
        flash(_("It was already shared with them."))
    return redirect(url_for("sharing.shares", conversation_id=conversation.id))


@bp.post("/conversations/<int:conversation_id>/shares/<int:share_id>/withdraw")
def withdraw(conversation_id: int, share_id: int):
    """End one share: its readers lose the conversation at once."""
    conversation = chat.owned_conversation(current_user, conversation_id)
    whom = services.withdraw(conversation, share_id)
    if wants_json():
        return jsonify(_shares_as_dict(conversation))
    flash(_("No longer shared with %(name)s.", name=whom))
    return redirect(url_for("sharing.shares", conversation_id=conversation.id))


@bp.get("/shared")
def shared_with_me():
    """The colleagues' conversations shared with the user, newest first."""
    conversations = services.shared_with(current_user)
    if wants_json():
        return jsonify(
            conversations=[
                chat.conversation_as_dict(c)
                | {"owner": c.owner.username, "url": url_for("sharing.view", conversation_id=c.id)}
                for c in conversations
            ]
        )
    return render_template("sharing/shared.html", conversations=conversations)


@bp.get("/shared/<int:conversation_id>")
def view(conversation_id: int):
    """A colleague's conversation, read-only: the branch its owner shows now."""
    conversation = services.shared_conversation(current_user, conversation_id)
    thread = chat.thread_of(conversation)
    if wants_json():
        return jsonify(
            conversation=chat.conversation_as_dict(conversation) | {"owner": conversation.owner.username},
            messages=[chat.message_as_dict(m) for m in thread],
        )
    return render_template("sharing/view.html", conversation=conversation, thread=thread)


@bp.post("/shared/<int:conversation_id>/copy")
def copy(conversation_id: int):
    """A conversation of the reader's own with the shared one's messages, to go on with."""
    conversation = services.shared_conversation(current_user, conversation_id)
    copied = services.copy_for(current_user, conversation, _model_for(conversation.model))
    url = url_for("chat.conversation", conversation_id=copied.id)
    if wants_json():
        return jsonify(id=copied.id, url=url), 201
    flash(_("Copied into your conversations: go on from here."))
    return redirect(url)


def _model_for(wanted: str) -> str:
    """The model a conversation moved in goes on with: the one it names, if this person may use
    it here, else the default (the page then offers the others)."""
    usable = offered_to(current_user)  # the same list as the chat's picker
    if any(e.id == wanted for e in usable):
        return wanted
    default = llm().catalogue.default(usable)
    return default.id if default else wanted


def _import_too_large():
    return _import_refused(imports.too_large_message(limit_bytes()), 413)


def _import_refused(message: str, status: int = 400):
    if wants_json():
        return render_error(status, message)
    return render_template(
        "sharing/import.html", error=message, limit_mb=limit_bytes() // (1024 * 1024)
    ), status


@bp.get("/import")
def import_page():
    """The form that brings conversations in from another chat's export."""
    return render_template("sharing/import.html", limit_mb=limit_bytes() // (1024 * 1024))


@bp.post("/import")
@takes_upload(on_too_large=_import_too_large)
def import_conversations():
    """Each conversation of the export file becomes one of the user's."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _import_refused(_("Choose the export file to import."))
    try:
        export = imports.read_export(upload.read(limit_bytes() + 1), limit_bytes())
    except imports.ImportTooLarge:
        return _import_too_large()
    except imports.ImportRefused as refused:
        return _import_refused(str(refused))
    stored = imports.store(current_user, export, _model_for)
    audit.record(
        "conversation.import",
        upload.filename[:200],
        details={"source": export.source, "imported": len(stored), "skipped": export.skipped},
    )
    db.session.commit()
    imported = ngettext("%(num)d conversation imported.", "%(num)d conversations imported.", len(stored))
    skipped = (
        " "
        + ngettext(
            "%(num)d conversation without messages was skipped.",
            "%(num)d conversations without messages were skipped.",
            export.skipped,
        )
        if export.skipped
        else ""
    )
    if wants_json():
        return jsonify(
            source=export.source,
            imported=[c.id for c in stored],
            skipped=export.skipped,
            message=imported + skipped,
        ), 201
    flash(imported + skipped)
    if len(stored) == 1:
        return redirect(url_for("chat.conversation", conversation_id=stored[0].id))
    return redirect(url_for("chat.index"))
