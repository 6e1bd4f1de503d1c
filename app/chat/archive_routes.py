"""Searching one's conversations, and downloading one as Markdown or JSON."""

from __future__ import annotations

from flask import Response, jsonify, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.chat import archive, bp, services
from app.errors import render_error, wants_json


@bp.get("/search")
def search():
    """The user's conversations whose title or messages contain the words asked for."""
    query = request.args.get("q", "").strip()
    try:
        hits = archive.search(current_user, query)
    except archive.QueryTooLong:
        return render_error(400, _("A search has at most %(max)d characters.", max=archive.MAX_QUERY_CHARS))
    if wants_json():
        results = [
            hit.as_dict() | {"url": url_for("chat.conversation", conversation_id=hit.conversation_id)}
            for hit in hits
        ]
        return jsonify(query=query, results=results)
    return render_template("chat/search.html", query=query, hits=hits)


def _download(body: str, mimetype: str, conversation, extension: str) -> Response:
    disposition = archive.download_disposition(
        conversation.title, extension, fallback=f"conversation-{conversation.id}"
    )
    # A private conversation: no cache along the way keeps a copy.
    headers = {"Content-Disposition": disposition, "Cache-Control": "no-store"}
    return Response(body, mimetype=mimetype, headers=headers)


@bp.get("/conversations/<int:conversation_id>/export.md")
def export_markdown(conversation_id: int):
    """The conversation as shown, as a Markdown file to download."""
    conversation = services.owned_conversation(current_user, conversation_id)
    return _download(archive.as_markdown(conversation), "text/markdown", conversation, "md")


@bp.get("/conversations/<int:conversation_id>/export.json")
def export_json(conversation_id: int):
    """The conversation with every version of every turn, as a JSON file to download."""
    conversation = services.owned_conversation(current_user, conversation_id)
    return _download(archive.as_json(conversation), "application/json", conversation, "json")
