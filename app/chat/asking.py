"""What every page that asks a model checks first (the chat, the compare page): the request's
fields, the prompt's length, the model, and a place in the scheduler's queue."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from flask import current_app, request
from flask_babel import gettext as _
from flask_login import current_user

from app.chat.stream import engine_unreachable_message, model_unavailable_message
from app.errors import render_error
from app.extensions import db
from app.llm import services as llm
from app.llm.catalogue import Entry
from app.models import User


def field(name: str) -> str:
    """A text field of the JSON body or of the form; "" when absent or not a string."""
    data = request.get_json(silent=True) if request.is_json else request.form
    value = data.get(name, "") if isinstance(data, dict) else ""  # a form is a dict too
    return value if isinstance(value, str) else ""


def prompt_refused(text: str):
    """The error response for an empty or over-long message; None when it may be sent."""
    limit = current_app.config["MAX_MESSAGE_CHARS"]
    if not text:
        return render_error(400, _("Write a message first."))
    if len(text) > limit:
        return render_error(400, _("This message is too long (%(max)d characters at most).", max=limit))
    return None


def offered(model_id: str) -> Entry | None:
    """The model's catalogue entry when users may pick it, else None."""
    entry = llm().catalogue.entry(model_id)
    return entry if entry and entry.offered else None


def model_unavailable(model_id: str, status: int):
    """Why a model cannot answer: its host is down for now (503), or it is not offered."""
    entry = llm().catalogue.entry(model_id)
    if entry is not None and not entry.info.reachable:
        return render_error(503, engine_unreachable_message())
    return render_error(status, model_unavailable_message(model_id))


def still_allowed() -> Callable[[], bool]:
    """For an answer stream: whether the signed-in user may still read it — not disabled, not
    waiting for approval, not signed out everywhere since. Read on its own connection, so a
    change committed meanwhile is seen whatever the stream's session holds."""
    user_id, token = current_user.id, current_user.session_token

    def allowed() -> bool:
        query = sa.select(User.disabled, User.pending, User.session_token).where(User.id == user_id)
        with db.engine.connect() as connection:
            row = connection.execute(query).first()
        return row is not None and not row.disabled and not row.pending and row.session_token == token

    return allowed


def queue_full():
    """The scheduler's queue is full. Every stream holds a server thread: beyond the bound,
    pages would wait for threads, so the answer is refused, to be asked again later."""
    response = render_error(503, _("Too many answers are being written right now. Try again in a minute."))
    response[0].headers["Retry-After"] = "30"
    return response
