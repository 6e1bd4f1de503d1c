"""What a person reads about an answer, in their language: why it failed, why it was cut."""

from __future__ import annotations

from flask_babel import format_decimal, ngettext
from flask_babel import gettext as _

from app.llm.types import (
    ANSWER_MAX_CHARS,
    ANSWER_TOO_LONG,
    ENGINE_BUSY,
    ENGINE_CRASHED,
    ENGINE_REPLY_TOO_LARGE,
    ENGINE_UNAVAILABLE,
    ENGINE_UNREACHABLE,
    FIRST_TOKEN_TIMEOUT,
    LOAD_TIMEOUT,
    MODEL_NOT_FOUND,
    MODEL_TOO_LARGE,
    MODEL_UNREADABLE,
    PROMPT_TOO_LONG,
    STALLED,
    EngineError,
)


def model_unavailable_message(model: str) -> str:
    return _("The model “%(model)s” is not available. Pick another model.", model=model)


def model_not_allowed_message(model: str) -> str:
    """A model kept for some groups, asked by someone outside them (app.accounts.access)."""
    return _(
        "The model “%(model)s” is kept for some groups, and you are not in them. Pick another model, "
        "or ask the administrator.",
        model=model,
    )


def engine_unreachable_message() -> str:
    return _("The model server cannot be reached right now. Try again in a moment, or pick another model.")


def error_message(error: EngineError, model: str, detailed: bool) -> str:
    """What the user reads when an answer fails; admins also see the technical detail."""
    messages = {
        MODEL_NOT_FOUND: model_unavailable_message(model),
        MODEL_UNREADABLE: _(
            "The model “%(model)s” could not be loaded. The administrator can see why on the models page.",
            model=model,
        ),
        ENGINE_UNAVAILABLE: _("The model engine is not installed on this server."),
        PROMPT_TOO_LONG: _(
            "This message is too long for the model's context window. Shorten it or start a new conversation."
        ),
        ENGINE_UNREACHABLE: engine_unreachable_message(),
        MODEL_TOO_LARGE: _(
            "The model “%(model)s” needs more memory than the server has free. Pick a smaller model, "
            "or ask the administrator to unload another one.",
            model=model,
        ),
        ENGINE_BUSY: _("The model server is busy with other requests. Try again in a minute."),
        LOAD_TIMEOUT: _(
            "The model “%(model)s” did not finish loading within %(seconds)s seconds. Try again later, "
            "or pick a smaller model.",
            model=model,
            seconds=error.values.get("seconds", "?"),
        ),
        FIRST_TOKEN_TIMEOUT: _(
            "The model “%(model)s” did not start answering within %(seconds)s seconds. Try again, "
            "perhaps with a shorter message.",
            model=model,
            seconds=error.values.get("seconds", "?"),
        ),
        STALLED: _(
            "The model stopped sending its answer (nothing for %(seconds)s seconds). What it wrote is "
            "kept; try again.",
            seconds=error.values.get("seconds", "?"),
        ),
        ENGINE_CRASHED: _(
            "The model's server stopped while it was answering; it is being restarted. What was written "
            "is kept; try again in a moment."
        ),
        ANSWER_TOO_LONG: _(
            "The answer passed %(limit)s characters and was stopped there; what came before is kept.",
            limit=format_decimal(ANSWER_MAX_CHARS),
        ),
        ENGINE_REPLY_TOO_LARGE: _(
            "The model server sent a reply too large to read, and the answer was stopped. What was "
            "written is kept; the administrator can see why."
        ),
    }
    text = messages.get(error.code, _("The model failed while answering. Please try again."))
    return f"{text} ({error.detail})" if detailed and error.detail else text


def not_saved_message(kept: int) -> str:
    """The answer's ending could not be stored (the disk is full, the database is down)."""
    return _(
        "The answer could not be saved (the server's storage failed): %(kept)d characters of it are "
        "stored, the rest is only on this page. Copy it if you need it.",
        kept=kept,
    )


def unwatched_message(minutes: int) -> str:
    return _("Nobody followed this answer for %(minutes)d minutes: it was cancelled.", minutes=minutes)


def queue_full_message() -> str:
    return _("Too many answers are being written right now. Try again in a minute.")


def too_many_of_yours_message(limit: int) -> str:
    return _(
        "You already have %(limit)d answers being written or waiting. Wait for one to finish, or stop one.",
        limit=limit,
    )


def too_many_streams_message() -> str:
    return _("Too many pages are following answers right now. Try again in a minute.")


def stream_closed_message() -> str:
    return _("This answer is now followed in another of your pages.")


def shutting_down_message() -> str:
    return _("The server is restarting. Try again in a minute.")


def session_ended_message() -> str:
    return _("This session has ended (signed out, or access withdrawn). What was written is kept.")


def stopped_by_admin_message() -> str:
    return _("Stopped by the administrator.")


def trimmed_message(dropped: int) -> str:
    return ngettext(
        "The oldest message no longer fits in the model's context window and was left out.",
        "The %(num)d oldest messages no longer fit in the model's context window and were left out.",
        dropped,
    )


class Wording:
    """What one answer's author reads, in the language they had when they asked: usable from
    the threads that write the answer, outside any request."""

    def __init__(self, app, locale: str, model: str, detailed: bool) -> None:
        self.app = app
        self.locale = locale
        self.model = model
        self.detailed = detailed  # admins also read the technical detail

    def _say(self, words, *args) -> str:
        from flask_babel import force_locale

        with self.app.app_context(), force_locale(self.locale):
            return str(words(*args))

    def error(self, error: EngineError) -> str:
        return self._say(error_message, error, self.model, self.detailed)

    def trimmed(self, dropped: int) -> str:
        return self._say(trimmed_message, dropped)

    def not_saved(self, kept: int) -> str:
        return self._say(not_saved_message, kept)

    def session_ended(self) -> str:
        return self._say(session_ended_message)

    def unwatched(self, minutes: int) -> str:
        return self._say(unwatched_message, minutes)

    def stopped_by_admin(self) -> str:
        return self._say(stopped_by_admin_message)
