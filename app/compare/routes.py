"""The compare page: one prompt, two models, both answers streamed (documented in the README)."""

from __future__ import annotations

from flask import Response, abort, current_app, jsonify, render_template, request, stream_with_context
from flask_babel import gettext as _
from flask_login import current_user

from app.chat.asking import field, model_unavailable, offered, prompt_refused, queue_full, still_allowed
from app.compare import bp, services
from app.compare.services import RunningAnswers, ScratchStream
from app.errors import render_error
from app.llm import services as llm
from app.llm.scheduler import GenerationRequest
from app.llm.types import Outcome


@bp.record_once
def _keep_running_answers(state) -> None:
    state.app.extensions["compare.running"] = RunningAnswers()


def _model_unavailable(model_id: str):
    if not model_id:
        return render_error(400, _("Pick a model."))
    return model_unavailable(model_id, 400)


@bp.get("/compare")
def index():
    """The page: two model pickers, one prompt, two answers side by side."""
    models = llm().catalogue.offered()
    first, second = services.default_pair(models)
    return render_template(
        "compare/index.html",
        models=models,
        first=first,
        second=second,
        plan=services.plan(first, second) if first and second else None,
    )


@bp.get("/compare/plan")
def plan():
    """Whether the answers of two models would be written at the same time on this server."""
    pair = []
    for name in ("a", "b"):
        model_id = request.args.get(name, "")
        entry = offered(model_id)
        if entry is None:
            return _model_unavailable(model_id)
        pair.append(entry)
    chosen = services.plan(*pair)
    return jsonify(together=chosen.together, message=chosen.message)


@bp.post("/compare/answers")
def answer():
    """Stream one model's answer to the prompt as Server-Sent Events; nothing is stored."""
    prompt = field("prompt").strip()
    refused = prompt_refused(prompt)
    if refused:
        return refused
    entry = offered(field("model"))
    if entry is None:
        return _model_unavailable(field("model"))
    scheduler = llm().scheduler
    if not scheduler.reserve():
        return queue_full()
    key = scheduler.private_key()
    generation = GenerationRequest(
        key=key,
        user_id=current_user.id,
        model_id=entry.id,
        messages=services.prompt_for(entry, prompt),
        options=services.options_for(entry),
    )
    try:  # the place reserved is either used by the job or given back
        job = scheduler.submit(generation, reserved=True)
    except BaseException:
        scheduler.release()
        raise
    running = services.running_answers()
    running.add(key, current_user.id)
    stream = ScratchStream(
        job,
        key,
        model=entry.id,
        client_gone=request.environ.get("waitress.client_disconnected", lambda: False),
        ping_every=current_app.config["PING_SECONDS"],
        detailed_errors=current_user.is_admin,
        allowed=still_allowed(),
    )
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "X-Compare-Id": str(key)}
    response = Response(stream_with_context(iter(stream)), mimetype="text/event-stream", headers=headers)
    # A response closed before its stream began never runs the stream's own ending.
    response.call_on_close(lambda: _abandon(scheduler, running, key))
    return response


def _abandon(scheduler, running: RunningAnswers, key: int) -> None:
    scheduler.cancel(key, Outcome.DISCONNECTED)  # False, and harmless, once the job has ended
    running.forget(key)


@bp.post("/compare/answers/<int(signed=True):key>/stop")
def stop(key: int):
    """Stop one of the user's comparison answers; what it wrote so far stays on the page."""
    if services.running_answers().owner(key) != current_user.id:
        abort(404)
    return jsonify(stopped=llm().scheduler.cancel(key, Outcome.STOPPED))
