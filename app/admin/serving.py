"""The admin's view of the answers being written and of how the engines serve them: the
prompt cache switch, and Stop for any answer (the admin is one of those who may end one)."""

from __future__ import annotations

import time

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.admin import bp, services
from app.answers import registry
from app.audit import record
from app.extensions import db
from app.llm import services as llm
from app.llm.types import Outcome
from app.models import User


def answers_under_way() -> list[dict]:
    """Every answer being written, oldest first, with its author's name and where it stands."""
    live = sorted(registry().live(), key=lambda a: a.started_at)
    ids = {a.user_id for a in live}
    names = (
        dict(db.session.execute(sa.select(User.id, User.username).where(User.id.in_(ids))).all())
        if ids
        else {}
    )
    now = time.time()
    return [
        {
            "id": a.id,
            "user": names.get(a.user_id, _("benchmark") if a.user_id == 0 else "?"),
            "model": a.model,
            "kind": _("conversation") if a.conversation_id else _("comparison or API"),
            "seconds": now - a.started_at,
            "readers": a.subscribers,
            **a.progress(),
        }
        for a in live
    ]


def serving_settings() -> dict:
    """The limits the configuration sets, and the state of the answers now."""
    config = current_app.config
    answers = registry()
    return {
        "prompt_cache": services.load_preferences().prompt_cache,
        "prompt_cache_mb": config["PROMPT_CACHE_MB"],
        "max_answers": config["MAX_ANSWERS"],
        "max_per_user": config["MAX_ANSWERS_PER_USER"],
        "max_streams": config["MAX_STREAMS"],
        "max_streams_per_user": config["MAX_STREAMS_PER_USER"],
        "unwatched_minutes": config["UNWATCHED_CANCEL_MINUTES"],
        "open_streams": answers.open_streams(),
        "under_way": llm().scheduler.active(),
    }


@bp.post("/answers/<answer_id>/stop")
def stop_answer(answer_id: str):
    """End an answer being written, whoever asked it; its author reads that the admin did."""
    live = registry().get(answer_id)
    if live is None:
        abort(404)
    # The author reads why in the language they asked in, not the admin's.
    if live.cancel(Outcome.STOPPED, live.words.stopped_by_admin()):
        author = db.session.get(User, live.user_id) if live.user_id else None
        record("answer.stop", author.username if author else "", details={"model": live.model})
        db.session.commit()
        live.ended.wait(3)  # the page that follows no longer lists it (the engine stops within ms)
        flash(_("The answer of %(model)s is stopped.", model=live.model))
    return redirect(url_for("admin.models", _anchor="answers"))


@bp.post("/models/prompt-cache")
def set_prompt_cache():
    """Switch the engines' prompt cache on or off (llama-server restarts each model once idle)."""
    on = request.form.get("on") == "1"
    services.set_prompt_cache(on)
    if on:
        flash(_("The prompt cache is on: a conversation's earlier turns are not read again."))
    else:
        flash(_("The prompt cache is off: every prompt is read from its start."))
    current_app.logger.info("admin %r: prompt cache %s", current_user.username, "on" if on else "off")
    return redirect(url_for("admin.models", _anchor="serving"))
