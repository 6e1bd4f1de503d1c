"""What every request for an answer checks first (the chat, the compare page): the request's
fields, the prompt's length, the model; and whether its author may still read it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from flask import current_app, g, make_response, request
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_login import current_user

from app.accounts import access as model_access
from app.answers.messages import (
    engine_unreachable_message,
    model_not_allowed_message,
    model_unavailable_message,
)
from app.answers.pipeline import Refused
from app.extensions import db
from app.llm import services as llm
from app.llm.catalogue import Entry
from app.models import User


def field(name: str) -> str:
    """A text field of the JSON body or of the form; "" when absent or not a string."""
    data = request.get_json(silent=True) if request.is_json else request.form
    value = data.get(name, "") if isinstance(data, dict) else ""  # a form is a dict too
    return value if isinstance(value, str) else ""


def check_prompt(text: str) -> None:
    """Refused (400) for an empty or over-long message: never shortened, since its end is often
    what matters (the question after a pasted document). The length is counted as the page
    counts it (characters, after trimming), and said, so the writer knows how much to cut."""
    limit = current_app.config["MAX_MESSAGE_CHARS"]
    if not text:
        raise Refused(400, _("Write a message first."))
    if len(text) > limit:
        message = _(
            "This message has %(count)s characters, %(max)s at most: shorten it, or send it in parts.",
            count=format_decimal(len(text)),
            max=format_decimal(limit),
        )
        raise Refused(400, message)


def asker() -> User:
    """Who asks: the API key's owner on the API, else the signed-in person."""
    return g.get("api_user") or current_user._get_current_object()


def offered_to(user: User, entries: list[Entry] | None = None) -> list[Entry]:
    """The models `user` may pick: offered to users, and not kept for groups they are not in
    (`entries`: the catalogue's listing when the caller has it already)."""
    entries = llm().catalogue.entries() if entries is None else entries
    usable = model_access.model_filter(user)
    return [entry for entry in entries if entry.offered and usable(entry.id)]


def offered_or_refused(model_id: str, status: int, user: User | None = None) -> Entry:
    """The model's entry when `user` (the one asking, by default) may pick it; else Refused:
    kept for groups they are not in (403, the same on every entry point), its host down for now
    (503), or not offered (`status`). Every route that asks a model goes through here first,
    before anything is stored."""
    if not model_id:
        raise Refused(400, _("Pick a model."))
    entry = llm().catalogue.entry(model_id)
    if entry is not None and not model_access.may_use_model(user or asker(), entry.id):
        raise Refused(403, model_not_allowed_message(entry.name))
    if entry is not None and entry.offered:
        return entry
    if entry is not None and not entry.info.reachable:
        raise Refused(503, engine_unreachable_message())
    raise Refused(status, model_unavailable_message(model_id))


def session_still_valid() -> Callable[[], bool]:
    """For an event stream: whether the signed-in session may still read it — the account not
    disabled, not waiting for approval, not signed out everywhere since. Read on a connection
    of its own, so a change committed meanwhile is seen whatever the stream's session holds."""
    user_id, token = current_user.id, current_user.session_token

    def valid() -> bool:
        query = sa.select(User.disabled, User.pending, User.session_token).where(User.id == user_id)
        with db.engine.connect() as connection:
            row = connection.execute(query).first()
        return row is not None and not row.disabled and not row.pending and row.session_token == token

    return valid


def account_active(user_id: int) -> Callable[[], bool]:
    """For an answer: whether its author's account may still have it written (not disabled,
    not waiting for approval). Asked from the answers' keeper, outside any request."""
    app = current_app._get_current_object()

    def active() -> bool:
        query = sa.select(User.disabled, User.pending).where(User.id == user_id)
        with app.app_context(), db.engine.connect() as connection:
            row = connection.execute(query).first()
        return row is not None and not row.disabled and not row.pending

    return active


def refused_response(refused: Refused):
    """A refusal as the pages and scripts get errors (app.errors), with its Retry-After."""
    from app.errors import render_error

    body, status = render_error(refused.status, refused.message)
    response = make_response(body, status)
    if refused.retry_after:
        response.headers["Retry-After"] = str(refused.retry_after)
    return response


def open_stream(user_id: int, settled: bool = True, resumable: bool = True):
    """A place for one more event stream of this person (their oldest closes beyond their
    share, at once or when `registry().settle()` says so); Refused (503) when every place of
    the server is taken."""
    from app.answers import registry
    from app.answers.messages import too_many_streams_message
    from app.answers.registry import TooManyStreams

    try:
        return registry().open_stream(user_id, settled, resumable)
    except TooManyStreams:
        raise Refused(503, too_many_streams_message(), retry_after=30) from None


@contextmanager
def stream_place(user_id: int, resumable: bool = True) -> Iterator:
    """A stream's place for a request about to start answers, taken before they start (every
    request waiting for one holds a server thread) and given back if the block fails: the
    person's older pages close for it only once `registry().settle()` says it is used."""
    from app.answers import registry

    ticket = open_stream(user_id, settled=False, resumable=resumable)
    try:
        yield ticket
    except BaseException:
        registry().close_stream(ticket)
        raise
