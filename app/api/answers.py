"""An answer asked through the API: the same scheduler, checks and measurements as the chat's,
nothing stored but the measurements (the dashboard counts scripts' answers too)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict

from flask import current_app, g, request
from flask_babel import gettext as _

from app.api import keys
from app.chat import sampling
from app.chat.stream import UnsavedStream
from app.database import end_transaction
from app.llm import services as llm
from app.llm.catalogue import Entry
from app.llm.scheduler import GenerationRequest
from app.llm.types import ChatMessage, GenerationOptions

ROLES = ("system", "user", "assistant")


class Refused(ValueError):
    """The request cannot be answered: (HTTP status, message in the user's language)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def offered_entry(model_id) -> Entry:
    """The model's entry when users may pick it; Refused (404 or 503) otherwise."""
    from app.chat.stream import engine_unreachable_message, model_unavailable_message

    if not isinstance(model_id, str) or not model_id:
        raise Refused(400, _("Pick a model."))
    entry = llm().catalogue.entry(model_id)
    if entry is not None and entry.offered:
        return entry
    if entry is not None and not entry.info.reachable:
        raise Refused(503, engine_unreachable_message())
    raise Refused(404, model_unavailable_message(model_id))


def messages_from(data: dict) -> list[ChatMessage]:
    """`messages` ([{role, content}], OpenAI's shape) or `prompt` (one user message)."""
    limit = current_app.config["MAX_MESSAGE_CHARS"]
    if "messages" in data:
        raw = data["messages"]
        if not isinstance(raw, list) or not raw:
            raise Refused(400, _("“messages” is a list of {role, content}."))
        messages = []
        for item in raw:
            content = item.get("content") if isinstance(item, dict) else None
            if isinstance(content, list):  # OpenAI's content parts: the text ones are read
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            if not isinstance(item, dict) or item.get("role") not in ROLES or not isinstance(content, str):
                raise Refused(400, _("“messages” is a list of {role, content}."))
            messages.append(ChatMessage(item["role"], content))
        if messages[-1].role != "user":
            raise Refused(400, _("The last message must be the user's."))
    else:
        prompt = data.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise Refused(400, _("Write a message first."))
        messages = [ChatMessage("user", prompt.strip())]
    if sum(len(m.content) for m in messages) > limit:
        raise Refused(400, _("This message is too long (%(max)d characters at most).", max=limit))
    return messages


def options_for(entry: Entry, data: dict) -> GenerationOptions:
    """The configured and the admin's options, with the caller's sampling choices within the
    admin's limits (the chat's rules: temperature, top_p, top_k, max_tokens)."""
    config = current_app.config
    limit = sampling.answer_limit(entry, config["MAX_ANSWER_TOKENS"])
    try:
        chosen = sampling.parse({k: v for k, v in data.items() if v is not None}, limit)
    except sampling.Refused as refused:
        raise Refused(400, str(refused)) from None
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise Refused(400, _("“seed” is a whole number."))
    return llm().catalogue.options_for(entry, sampling.configured(seed), think=None, chosen=chosen)


def with_system_prompt(entry: Entry, messages: list[ChatMessage]) -> list[ChatMessage]:
    """The admin's system prompt for the model, unless the caller gave one."""
    system = entry.prefs.system_prompt.strip()
    if system and not any(m.role == "system" for m in messages):
        return [ChatMessage("system", system), *messages]
    return messages


class ApiStream(UnsavedStream):
    """The chat's answer stream for an API answer: nothing saved, but measured."""

    def collect(self) -> ApiStream:
        """Run the whole answer (no streaming to the caller): its text, stats and ending."""
        for _frame in self:
            pass
        return self

    def _record(self, ended_at: float) -> None:
        # Times as the engine produced them: several answers of one request are read in turn.
        job = self.job
        self.first_token_at = job.first_token_at or self.first_token_at
        self.first_answer_at = job.first_answer_at or self.first_answer_at
        super()._record(job.ended_at or ended_at)

    def timings(self) -> dict:
        """Seconds from the request's arrival: first token (thinking or answer), first answer
        token, the end; the queue's wait and the model's load are in the stats."""
        received = self.measure["received_at"]

        def since(at: float | None) -> float | None:
            return round(at - received, 3) if at is not None else None

        job = self.job
        return {
            "first_token_seconds": since(job.first_token_at),
            "first_answer_seconds": since(job.first_answer_at),
            "total_seconds": since(job.ended_at),
        }


def start(entry: Entry, messages: list[ChatMessage], options: GenerationOptions, stream_class=ApiStream):
    """Hand the answer to the scheduler; Refused(503) when the queue is full."""
    received_at = time.perf_counter()
    scheduler = llm().scheduler
    if not scheduler.reserve():
        raise Refused(503, _("Too many answers are being written right now. Try again in a minute."))
    key = scheduler.private_key()
    user = g.api_user
    generation = GenerationRequest(
        key=key,
        user_id=user.id,
        model_id=entry.id,
        messages=with_system_prompt(entry, messages),
        options=options,
    )
    try:  # the place reserved is either used by the job or given back
        job = scheduler.submit(generation, reserved=True)
    except BaseException:
        scheduler.release()
        raise
    key_id = g.api_key.id
    allowed: Callable[[], bool] = lambda: keys.still_valid(key_id)  # noqa: E731
    stream = stream_class(
        job,
        message_id=key,
        model=entry.id,
        client_gone=request.environ.get("waitress.client_disconnected", lambda: False),
        save_every=float("inf"),
        ping_every=current_app.config["PING_SECONDS"],
        detailed_errors=user.is_admin,
        measure={
            "received_at": received_at,
            "user_id": user.id,
            "conversation_id": None,
            "message_id": None,  # no stored message: the key is the scheduler's own
            "parameters": asdict(options),
        },
        allowed=allowed,
    )
    end_transaction()
    return stream


def retry_after(response):
    response.headers["Retry-After"] = "30"
    return response
