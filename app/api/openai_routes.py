"""`/v1/models` and `/v1/chat/completions` in OpenAI's shape, so that existing tools (the
`openai` client, editors' plugins) work unchanged — behind the same keys, scheduler and limits."""

from __future__ import annotations

import json
import time
import uuid

from flask import current_app, g, jsonify, request
from flask_babel import gettext as _

from app.answers import sampling
from app.answers.asking import offered_to
from app.answers.live import AnswerEvent
from app.api import answers, openai_bp
from app.api.answers import Refused
from app.llm.types import Outcome

# How an answer's ending reads in OpenAI's words.
FINISH = {Outcome.COMPLETE: "stop", Outcome.STOPPED: "stop"}


def error_body(message: str, status: int, code: str = "") -> dict:
    kind = "invalid_request_error" if status < 500 else "server_error"
    if code == "quota_exceeded":  # OpenAI's own words for a spent budget, which clients know
        return {"error": {"message": message, "type": "insufficient_quota", "code": code}}
    return {"error": {"message": message, "type": kind, "code": status}}


@openai_bp.errorhandler(Refused)
def refused(error: Refused):
    response = jsonify(error_body(error.message, error.status, error.code))
    response.status_code = error.status
    return answers.retry_after(response, error)


@openai_bp.get("/models")
def models():
    created = int(time.time())
    return jsonify(
        object="list",
        data=[
            {"id": e.id, "object": "model", "created": created, "owned_by": e.info.engine.split("@", 1)[0]}
            for e in offered_to(g.api_user)
        ],
    )


def finish_reason(outcome: str, stats: dict) -> str:
    if outcome == Outcome.COMPLETE and stats.get("finish_reason") == "length":
        return "length"
    return FINISH.get(outcome, "stop")


def usage(stats: dict) -> dict:
    prompt, completion = stats.get("prompt_tokens") or 0, stats.get("completion_tokens") or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class CompletionFrames:
    """The answer as OpenAI's `chat.completion.chunk` events, ending with `data: [DONE]`."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.opened = False

    def _chunk(self, delta: dict, finish: str | None = None, **extra) -> str:
        data = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    def event(self, event: AnswerEvent) -> str:
        opening = {} if self.opened else {"role": "assistant"}
        if event.name == "token":
            self.opened = True
            return self._chunk({**opening, "content": event.data["text"]})
        if event.name == "thinking":
            self.opened = True
            return self._chunk({**opening, "reasoning_content": event.data["text"]})
        if event.name == "sources":  # our extension: OpenAI's clients ignore the field
            self.opened = True
            return self._chunk(opening, sources=event.data)
        if event.name == "done":
            stats = event.data.get("stats") or {}
            finish = finish_reason(event.data["state"], stats)
            return self._chunk({}, finish, usage=usage(stats)) + "data: [DONE]\n\n"
        if event.name == "error":
            return self.cut(event.data["message"])
        return ""

    def cut(self, message: str) -> str:
        """OpenAI's way to end a stream that failed or was cut (a key revoked meanwhile): an
        `error` object the client raises, then [DONE]."""
        return f"data: {json.dumps(error_body(message, 500), ensure_ascii=False)}\n\ndata: [DONE]\n\n"

    closed = cut


@openai_bp.post("/chat/completions")
def chat_completions():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Refused(400, _("The body must be a JSON object."))
    entry = answers.offered_entry(data.get("model"))
    messages = answers.messages_from(data)
    options = answers.options_for(entry, _sampling(data, entry))
    scope = answers.scope_from(data)
    with answers.a_place_to_wait() as ticket:
        live = answers.start(entry, messages, options, scope=scope)
    if data.get("stream"):
        return answers.stream(live, ticket, frames=CompletionFrames(entry.id))
    answers.collect([live], ticket)
    if live.outcome == Outcome.ERROR:
        raise Refused(502, live.error)
    message = {"role": "assistant", "content": live.text}
    if live.thinking:
        message["reasoning_content"] = live.thinking_text
    # `sources`: our extension, when the call names documents (OpenAI's clients ignore it)
    extension = {"sources": answers.sources_of(live)} if scope is not None else {}
    return jsonify(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        object="chat.completion",
        created=int(time.time()),
        model=entry.id,
        choices=[{"index": 0, "message": message, "finish_reason": finish_reason(live.outcome, live.stats)}],
        usage=usage(live.stats),
        **extension,
    )


def _sampling(data: dict, entry) -> dict:
    """OpenAI's names for the sampling choices the chat knows (others are ignored, as
    OpenAI-compatible servers do): `max_completion_tokens` is the newer `max_tokens`. A length
    out of this server's bounds is brought within them, not refused: tools send 4096 or 1
    without asking what a server allows."""
    chosen = {name: data.get(name) for name in ("temperature", "top_p", "seed")}
    wanted = data.get("max_completion_tokens", data.get("max_tokens"))
    if isinstance(wanted, int) and not isinstance(wanted, bool):
        limit = sampling.answer_limit(entry, current_app.config["MAX_ANSWER_TOKENS"])
        wanted = min(max(wanted, sampling.SHORTEST_ANSWER), limit)
    chosen["max_tokens"] = wanted
    return chosen
