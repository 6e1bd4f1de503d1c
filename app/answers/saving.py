"""Keeping an answer: its text in the database as it is written and at its end, whatever the
end; and its measurements (one Generation record)."""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from app.accounts import quotas
from app.answers.live import LiveAnswer, public_stats
from app.extensions import db
from app.llm.types import Outcome
from app.metrics.records import record_generation
from app.models import Message

log = logging.getLogger(__name__)
FINAL_SAVE_PAUSES = (0.2, 0.5, 1.0)  # seconds between the tries of an answer's last save


def save_answer(
    message_id: int,
    job: str,
    content: str,
    state: Outcome,
    error: str = "",
    stats: dict | None = None,
    thinking: str = "",
) -> bool:
    """Write an answer in its own short transaction; False when no message of this job is
    there any more (deleted with its conversation: its id may already be another's)."""
    values: dict = {"content": content, "thinking": thinking, "state": state.value, "error": error}
    if stats is not None:
        values["stats"] = stats
    result = db.session.execute(
        sa.update(Message).where(Message.id == message_id, Message.job == job).values(**values)
    )
    db.session.commit()
    return result.rowcount == 1


def save_partial(live: LiveAnswer) -> None:
    """What is written so far (every PARTIAL_SAVE_SECONDS): a killed process loses at most that."""
    if live.message_id is None:
        return
    with live.save_lock:
        text, thinking = live.text, live.thinking_text
        if live.ending or len(text) + len(thinking) == live.saved_length:
            return
        try:
            save_answer(live.message_id, live.id, text, Outcome.GENERATING, thinking=thinking)
            live.saved_length = len(text) + len(thinking)
        except SQLAlchemyError:
            db.session.rollback()
            log.warning("answer %s: a partial save failed; tried again in a moment", live.id, exc_info=True)


def save_final(live: LiveAnswer, pauses: tuple[float, ...] = FINAL_SAVE_PAUSES) -> bool | None:
    """The answer's end, tried a few times; True saved, False its message is gone (deleted),
    None not saved (the storage fails: `live.unsaved_end` is set for a later try)."""
    if live.message_id is None:
        return False
    with live.save_lock:
        live.ending = True
        for pause in (*pauses, None):
            try:
                saved = save_answer(
                    live.message_id,
                    live.id,
                    live.text,
                    live.outcome,
                    live.error,
                    public_stats(live.stats),  # the engine's details go to the measurements only
                    thinking=live.thinking_text,
                )
                live.saved_length = len(live.text) + len(live.thinking_text)
                live.unsaved_end = False
                return saved
            except SQLAlchemyError:
                db.session.rollback()
                log.warning("answer %s: its last save failed", live.id, exc_info=True)
                if pause is None:
                    live.unsaved_end = True
                    return None
                time.sleep(pause)
    return None


def record(live: LiveAnswer, saved: bool | None) -> None:
    """The answer's measurements; a failure here loses the record, never the answer."""
    if live.measure is None:
        return
    received = live.received_at

    def since(at: float | None) -> float | None:
        return at - received if at is not None else None

    figures = {
        "user_id": live.user_id,
        "model": live.model,
        "parameters": live.measure["parameters"],
        "outcome": live.outcome.value,
        "stats": live.stats,
        "first_token": since(live.first_token_at),
        "first_answer": since(live.first_answer_at),
        "total": (live.ended_at or time.perf_counter()) - received,
        "documents": live.measure.get("documents"),
    }
    # A deleted message's id may be another's: linked only when the save found it.
    linked = {"message_id": live.message_id, "conversation_id": live.conversation_id}
    try:
        try:
            record_generation(**(linked if saved else dict.fromkeys(linked)), **figures)
        except IntegrityError:
            # The conversation was deleted between the save and now (Delete while it ended):
            # the measurements stay, unlinked, as for an answer deleted before its end.
            db.session.rollback()
            record_generation(**dict.fromkeys(linked), **figures)
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("the measurements of answer %s could not be saved", live.id)


def settle_quota(live: LiveAnswer) -> None:
    """Its tokens, thinking included, counted against its author's day; a failure here loses
    the count, never the answer."""
    if live.charge is None:
        return
    try:
        quotas.settle(live.charge, live.stats.get("completion_tokens") or 0)
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("the tokens of answer %s could not be counted", live.id)
