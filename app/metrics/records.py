"""One `Generation` record per answer, written when its stream ends."""

from __future__ import annotations

from app.extensions import db
from app.metrics.sampler import Usage
from app.models import Generation

RESOURCE_FIELDS = tuple(name for name in Usage.__dataclass_fields__ if name != "samples")


def prompt_speed(stats: dict) -> float | None:
    """Prompt tokens read per second: Ollama's own figures, else the engine's clock (from its
    start to the first token, the load left out)."""
    timings = stats.get("engine_timings") or {}
    if timings.get("prompt_eval_duration") and timings.get("prompt_eval_count"):
        return timings["prompt_eval_count"] / (timings["prompt_eval_duration"] / 1e9)
    reading = (stats.get("first_token_seconds") or 0) - (stats.get("load_seconds") or 0)
    return stats["prompt_tokens"] / reading if stats.get("prompt_tokens") and reading > 0 else None


def record_generation(
    *,
    message_id: int | None,
    user_id: int,
    conversation_id: int | None,
    model: str,
    parameters: dict,
    outcome: str,
    stats: dict,
    first_token: float | None,
    first_answer: float | None,
    total: float,
    documents: dict | None = None,
) -> None:
    """`first_token`, `first_answer`, `total`: seconds since the request was received.
    `documents`: what the question's documents cost (wait_seconds, retrieval_seconds,
    passages, passage_tokens)."""
    documents = documents or {}
    resources = stats.get("resources") or {}
    db.session.add(
        Generation(
            message_id=message_id,
            user_id=user_id,
            conversation_id=conversation_id,
            engine=stats.get("engine", ""),
            model=model,
            parameters=parameters,
            outcome=outcome,
            queue_seconds=stats.get("queue_seconds"),
            load_seconds=stats.get("load_seconds"),
            first_token_seconds=first_token,
            first_answer_seconds=first_answer,
            total_seconds=total,
            prompt_tokens=stats.get("prompt_tokens"),
            completion_tokens=stats.get("completion_tokens"),
            thinking_tokens=stats.get("thinking_tokens"),
            prompt_tokens_per_second=prompt_speed(stats),
            tokens_per_second=stats.get("tokens_per_second") or None,
            concurrent=stats.get("concurrent", 1),
            cached_prompt_tokens=stats.get("cached_tokens"),
            documents_wait_seconds=documents.get("wait_seconds"),
            retrieval_seconds=documents.get("retrieval_seconds"),
            passages=documents.get("passages"),
            passage_tokens=documents.get("passage_tokens"),
            **{name: resources.get(name) for name in RESOURCE_FIELDS},
        )
    )
    db.session.commit()
