"""The compare page: one prompt, two to four models, every answer streamed (documented in the
README)."""

from __future__ import annotations

import time

from flask import abort, jsonify, render_template, request
from flask_login import current_user

from app import answers
from app.answers import registry
from app.answers.asking import (
    check_prompt,
    field,
    offered_or_refused,
    offered_to,
    refused_response,
    session_still_valid,
    stream_place,
)
from app.answers.pipeline import Asking, Refused, new_answer_id
from app.answers.stream import sse_response
from app.compare import bp, services
from app.database import end_transaction
from app.llm.types import Outcome

bp.register_error_handler(Refused, refused_response)


@bp.get("/compare")
def index():
    """The page: two model pickers (up to four), one prompt, the answers side by side."""
    models = offered_to(current_user)
    first, second = services.default_pair(models)
    return render_template(
        "compare/index.html",
        models=models,
        first=first,
        second=second,
        most=services.COMPARED_MODELS,
        plan=services.plan([first, second]) if first and second else None,
    )


@bp.get("/compare/plan")
def plan():
    """Whether the answers of the models chosen (a, b, and c, d when shown) would be written at
    the same time on this server."""
    names = ["a", "b"] + [name for name in ("c", "d") if name in request.args]
    chosen = services.plan([offered_or_refused(request.args.get(name, ""), 400) for name in names])
    return jsonify(together=chosen.together, message=chosen.message)


@bp.post("/compare/answers")
def answer():
    """Stream one model's answer to the prompt as Server-Sent Events; nothing is stored."""
    received_at = time.perf_counter()
    prompt = field("prompt").strip()
    check_prompt(prompt)
    entry = offered_or_refused(field("model"), 400)
    # Never closed for a newer page: it could not be followed again.
    with stream_place(current_user.id, resumable=False) as ticket:
        with (
            services.comparison_place(current_user.id) as capped,
            answers.place(current_user.id, capped=capped) as held,
        ):
            asking = Asking(
                user_id=current_user.id,
                entry=entry,
                messages=services.prompt_for(entry, prompt),
                options=services.options_for(entry),
                received_at=received_at,
                watched_only=True,  # nobody can come back to it: it ends when its page goes
                recorded=False,
                detailed_errors=current_user.is_admin,
            )
            live = answers.start(asking, held, new_answer_id())
            services.remember(live)
        registry().settle(ticket)
        end_transaction()
    return sse_response(live, ticket, readable=session_still_valid(), headers={"X-Compare-Id": live.id})


@bp.post("/compare/answers/<answer_id>/stop")
def stop(answer_id: str):
    """Stop one of the user's comparison answers; what it wrote so far stays on the page."""
    live = registry().get(answer_id)
    if live is None or live.user_id != current_user.id or not live.watched_only or live.ended.is_set():
        abort(404)
    live.cancel(Outcome.STOPPED)
    return jsonify(stopped=True)
