"""`/api/v1`: models, health, generate, compare, conversations (documented in openapi.py);
documents and collections are in document_routes.py."""

from __future__ import annotations

from flask import g, jsonify, request
from flask_babel import gettext as _

from app.accounts import access as model_access
from app.accounts import quotas
from app.answers import registry
from app.answers.asking import offered_to
from app.answers.live import public_stats
from app.answers.pipeline import over_quota
from app.api import answers, bp
from app.api.answers import Refused
from app.api.openapi import SPEC
from app.chat import services as chat
from app.llm import services as llm

COMPARE_MODELS = 4  # at most, in one comparison


def refused(error: Refused):
    named = {"code": error.code, **error.extra} if error.code else {}  # quota_exceeded, resets_at
    response = jsonify(error=error.message, status=error.status, **named)
    response.status_code = error.status
    return answers.retry_after(response, error)


bp.register_error_handler(Refused, refused)


def body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Refused(400, _("The body must be a JSON object."))
    return data


def engine_name(name: str) -> str:
    """An engine as a key holder sees it: its kind; the hosts' addresses for admins only (an
    Ollama host takes no password: whoever knows it could bypass every limit here)."""
    return name if g.api_user.is_admin else name.split("@", 1)[0]


def model_as_dict(entry) -> dict:
    info = entry.info
    return {
        "id": entry.id,
        "name": entry.name,
        "description": entry.description,
        "engine": engine_name(info.engine),
        "thinking": info.thinking,
        "parameters": info.parameters,
        "quantization": info.quantization,
        "loaded": info.loaded,
    }


@bp.get("/openapi.json")
def openapi():
    """This API's description (OpenAPI 3.1)."""
    return jsonify(SPEC)


@bp.get("/models")
def models():
    catalogue = llm().catalogue
    offered = offered_to(g.api_user)
    default = catalogue.default(offered)
    return jsonify(default=default.id if default else None, models=[model_as_dict(e) for e in offered])


@bp.get("/health")
def health():
    """Whether the engines answer, which models are loaded, how many answers are under way."""
    catalogue = llm().catalogue
    admin = g.api_user.is_admin
    engines = [
        {
            "engine": engine_name(s.engine),
            "reachable": s.reachable,
            "version": s.version,
            "detail": s.detail if admin else "",
        }
        for s in catalogue.statuses()
    ]
    usable = model_access.model_filter(g.api_user)  # a model kept for other groups is not named
    loaded = [
        {"model": e.id, "engine": engine_name(e.info.engine)}
        for e in catalogue.entries()
        if e.info.loaded and usable(e.id)
    ]
    return jsonify(
        ok=all(e["reachable"] for e in engines),
        engines=engines,
        loaded=loaded,
        answers_under_way=llm().scheduler.active(),
    )


def answer_as_dict(live) -> dict:
    return {
        "model": live.model,
        "outcome": live.outcome.value,
        "text": live.text,
        "thinking": live.thinking_text,
        "error": live.error,
        "timings": live.timings(),
        "stats": public_stats(live.stats),
        "sources": answers.sources_of(live),
    }


@bp.post("/generate")
def generate():
    """One answer: streamed as the chat's Server-Sent Events (`"stream": true`), or whole."""
    data = body()
    entry = answers.offered_entry(data.get("model"))
    messages = answers.messages_from(data)
    options = answers.options_for(entry, data)
    scope = answers.scope_from(data)
    with answers.a_place_to_wait() as ticket:
        live = answers.start(entry, messages, options, scope=scope)
    if data.get("stream"):
        return answers.stream(live, ticket)
    return jsonify(answer_as_dict(answers.collect([live], ticket)[0]))


@bp.post("/compare")
def compare():
    """One prompt, several models: every answer with its timings (the scheduler decides whether
    they are written at the same time; on a small CPU server, one after the other)."""
    data = body()
    chosen = data.get("models")
    if not isinstance(chosen, list) or not 1 <= len(chosen) <= COMPARE_MODELS:
        raise Refused(400, _("“models” lists 1 to %(max)d models.", max=COMPARE_MODELS))
    entries = [answers.offered_entry(model_id) for model_id in chosen]
    messages = answers.messages_from(data)
    options = [answers.options_for(entry, data) for entry in entries]
    scope = answers.scope_from(data)
    try:  # all the models' answers, or none: a comparison cut short by the day's quota counts none
        quotas.check_can_start(g.api_user, answers=len(entries))
    except quotas.QuotaExceeded as over:
        raise over_quota(over) from None
    lives = []
    with answers.a_place_to_wait() as ticket:
        try:
            for entry, chosen in zip(entries, options, strict=True):
                # All started first: the scheduler may write them together. One request: the
                # person's bound applies to its first answer only.
                lives.append(answers.start(entry, messages, chosen, capped=not lives, scope=scope))
        except Refused:
            answers.cancel(lives)
            raise
    return jsonify(answers=[answer_as_dict(live) for live in answers.collect(lives, ticket)])


@bp.get("/quota")
def quota():
    """The caller's quotas and what is left of today's (shared with their chat and compare)."""
    return jsonify(quotas.remaining(g.api_user).as_dict())


@bp.get("/conversations")
def conversations():
    found = chat.conversations_of(g.api_user)
    answering = registry().answering(c.id for c in found)
    return jsonify(conversations=[chat.conversation_as_dict(c, c.id in answering) for c in found])


@bp.get("/conversations/<int:conversation_id>")
def conversation(conversation_id: int):
    """One of the caller's conversations: every message, and the branch shown (`thread`)."""
    found = chat.owned_conversation(g.api_user, conversation_id)
    return jsonify(
        conversation=chat.conversation_as_dict(found),
        messages=[chat.message_as_dict(m) for m in found.messages],
        thread=[m.id for m in chat.thread_of(found)],
    )


@bp.errorhandler(404)
def not_found(error):
    return jsonify(error=_("This page does not exist."), status=404), 404
