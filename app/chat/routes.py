"""The chat pages and the HTTP interface they use (documented in the README)."""

from __future__ import annotations

import time
from dataclasses import asdict

from flask import (
    Response,
    abort,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from app.chat import bp, services
from app.chat.asking import field, model_unavailable, offered, prompt_refused, queue_full, still_allowed
from app.chat.stream import AnswerStream
from app.errors import render_error, wants_json
from app.llm import services as llm
from app.llm.scheduler import GenerationRequest
from app.llm.types import GenerationOptions, Outcome


def _page(conversation=None):
    catalogue = llm().catalogue
    entries = catalogue.entries()  # once: every engine is asked, and the admin's settings read
    offered = [e for e in entries if e.offered]
    default = catalogue.default(offered)
    selected = conversation.model if conversation else (default.id if default else "")
    current = next((e for e in entries if e.id == selected), None)
    return render_template(
        "chat/index.html",
        conversation=conversation,
        conversations=services.conversations_of(current_user),
        models=offered,
        selected_model=selected,
        # A conversation keeps its model: one no longer offered is shown, marked unavailable.
        model_unavailable=bool(conversation) and all(e.id != selected for e in offered),
        model_unreachable=current is not None and not current.info.reachable,
    )


@bp.get("/")
def index():
    """A new, empty conversation."""
    return _page()


@bp.get("/c/<int:conversation_id>")
def conversation(conversation_id: int):
    """One conversation with its whole history."""
    return _page(services.owned_conversation(current_user, conversation_id))


@bp.get("/models")
def models():
    """The models a user can pick, the default first."""
    catalogue = llm().catalogue
    offered = catalogue.offered()
    default = catalogue.default(offered)
    return jsonify(
        default=default.id if default else None,
        models=[
            {"id": e.id, "name": e.info.name, "engine": e.info.engine, "thinking": e.info.thinking}
            for e in offered
        ],
    )


@bp.get("/conversations")
def list_conversations():
    """The user's conversations, newest first."""
    return jsonify(
        conversations=[services.conversation_as_dict(c) for c in services.conversations_of(current_user)]
    )


def _think_choice() -> bool | None:
    """The request's thinking choice: True, False, or None (the admin's default); anything
    else ends the request with a 400. Absent counts as "": new conversations need not say."""
    data = request.get_json(silent=True) if request.is_json else request.form
    value = data.get("think", "") if isinstance(data, dict) else ""
    if not isinstance(value, str) or value not in services.THINK_CHOICES:
        abort(make_response(*render_error(400, _("Thinking is either on or off."))))
    return services.THINK_CHOICES[value]


@bp.post("/conversations")
def create_conversation():
    """Start a conversation with the chosen model (the default when none is given)."""
    default = llm().catalogue.default()
    model_id = field("model") or (default.id if default else "")
    if default is None:
        return render_error(409, _("No usable model is installed on this server."))
    if not offered(model_id):
        return model_unavailable(model_id, 409)
    conversation = services.create_conversation(current_user, model_id, _think_choice())
    url = url_for("chat.conversation", conversation_id=conversation.id)
    if wants_json():
        return jsonify(id=conversation.id, url=url, model=model_id), 201
    return redirect(url)


@bp.get("/conversations/<int:conversation_id>/messages")
def list_messages(conversation_id: int):
    """The stored history of a conversation."""
    conversation = services.owned_conversation(current_user, conversation_id)
    return jsonify(
        conversation=services.conversation_as_dict(conversation),
        messages=[services.message_as_dict(m) for m in conversation.messages],
    )


@bp.post("/conversations/<int:conversation_id>/messages")
def send_message(conversation_id: int):
    """Store the user's message and stream the model's answer as Server-Sent Events."""
    received_at = time.perf_counter()  # every time measured for this answer counts from here
    conversation = services.owned_conversation(current_user, conversation_id)
    content = field("content").strip()
    refused = prompt_refused(content)
    if refused:
        return refused
    entry = offered(conversation.model)
    if entry is None:
        return model_unavailable(conversation.model, 409)
    scheduler = llm().scheduler
    if not scheduler.reserve():
        return queue_full()
    detailed_errors = current_user.is_admin
    try:  # the place reserved is either used by the job or given back
        job, exchange = _start_answer(scheduler, conversation, entry, content)
    except services.Busy:
        scheduler.release()
        return render_error(409, _("An answer is still being written here. Wait for it or stop it."))
    except BaseException:
        scheduler.release()
        raise
    stream = AnswerStream(
        job,
        message_id=exchange.answer_id,
        model=exchange.model,
        measure={
            "received_at": received_at,
            "user_id": current_user.id,
            "conversation_id": conversation_id,
            "parameters": asdict(job.request.options),
        },
        client_gone=request.environ.get("waitress.client_disconnected", lambda: False),
        save_every=current_app.config["PARTIAL_SAVE_SECONDS"],
        ping_every=current_app.config["PING_SECONDS"],
        detailed_errors=detailed_errors,
        allowed=still_allowed(),
    )
    headers = {
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        "X-Message-Id": str(exchange.answer_id),
    }
    return Response(stream_with_context(iter(stream)), mimetype="text/event-stream", headers=headers)


def _start_answer(scheduler, conversation, entry, content: str):
    """Store the question and an empty answer, and hand the generation to the scheduler."""
    user_id = current_user.id
    options = llm().catalogue.options_for(entry, _generation_options(), think=conversation.think)
    exchange = services.add_exchange(
        conversation, content, is_live=scheduler.is_active, system_prompt=entry.prefs.system_prompt
    )
    # From here on only plain values: the transaction is over, and stays so while the model works.
    generation = GenerationRequest(
        key=exchange.answer_id,
        user_id=user_id,
        model_id=exchange.model,
        messages=exchange.prompt,
        options=options,
    )
    return scheduler.submit(generation, reserved=True), exchange


def _generation_options() -> GenerationOptions:
    config = current_app.config
    return GenerationOptions(
        max_tokens=config["MAX_ANSWER_TOKENS"],
        temperature=config["GENERATION_TEMPERATURE"],
        seed=config["GENERATION_SEED"] if config["GENERATION_SEED"] >= 0 else None,
    )


@bp.post("/messages/<int:message_id>/stop")
def stop(message_id: int):
    """Stop an answer that is being written; what was written so far is kept."""
    message = services.owned_message(current_user, message_id)
    stopped = llm().scheduler.cancel(message.id, Outcome.STOPPED)
    return jsonify(stopped=stopped)


@bp.post("/conversations/<int:conversation_id>/rename")
def rename(conversation_id: int):
    """Give a conversation a new title."""
    conversation = services.owned_conversation(current_user, conversation_id)
    title = " ".join(field("title").split())
    if not title or len(title) > 200:
        return render_error(400, _("A title has 1 to 200 characters."))
    services.rename(conversation, title)
    if wants_json():
        return jsonify(services.conversation_as_dict(conversation))
    return redirect(url_for("chat.conversation", conversation_id=conversation.id))


@bp.post("/conversations/<int:conversation_id>/delete")
def delete(conversation_id: int):
    """Delete a conversation and its messages, stopping an answer still being written."""
    conversation = services.owned_conversation(current_user, conversation_id)
    for message in conversation.messages:
        if message.state == Outcome.GENERATING.value:
            llm().scheduler.cancel(message.id, Outcome.STOPPED)
    services.delete(conversation)
    if wants_json():
        return jsonify(deleted=conversation_id)
    return redirect(url_for("chat.index"))


@bp.post("/conversations/<int:conversation_id>/model")
def change_model(conversation_id: int):
    """Switch the model that writes the next answers of a conversation."""
    conversation = services.owned_conversation(current_user, conversation_id)
    entry = offered(field("model"))
    if entry is None:
        return model_unavailable(field("model"), 400)
    services.set_model(conversation, entry.id)
    if wants_json():
        return jsonify(services.conversation_as_dict(conversation))
    return redirect(url_for("chat.conversation", conversation_id=conversation.id))


@bp.post("/conversations/<int:conversation_id>/thinking")
def change_thinking(conversation_id: int):
    """Let a reasoning model think before answering in this conversation, or not."""
    conversation = services.owned_conversation(current_user, conversation_id)
    services.set_thinking(conversation, _think_choice())
    if wants_json():
        return jsonify(services.conversation_as_dict(conversation))
    return redirect(url_for("chat.conversation", conversation_id=conversation.id))
