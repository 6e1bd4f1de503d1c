"""The collections a request names for a conversation or a preset: a JSON list of ids, or a
form's repeated `collection_ids` field (an empty value alone: none)."""

from __future__ import annotations

from flask import abort, make_response, request
from flask_babel import gettext as _

from app.documents import access
from app.errors import render_error
from app.models import User


def collection_choice(user: User) -> list[int] | None:
    """The collections chosen, kept only those `user` may read (one they may not is dropped as
    if it did not exist, so that an id tells nothing); None when the request names none.
    A value that is not a list of ids ends the request with a 400."""
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or "collection_ids" not in data:
            return None
        wanted = data["collection_ids"]
        if not isinstance(wanted, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in wanted
        ):
            _refuse()
    else:
        if "collection_ids" not in request.form:
            return None
        try:
            wanted = [int(value) for value in request.form.getlist("collection_ids") if value.strip()]
        except ValueError:
            _refuse()
    # An id past the database's integers names no collection (the driver would fail on it).
    wanted = [i for i in wanted if 0 < i < 2**63]
    return access.readable_collection_ids(user.id, list(dict.fromkeys(wanted)))


def _refuse() -> None:
    message = _("Knowledge bases are given as a list of their numbers.")
    abort(make_response(*render_error(400, message)))
