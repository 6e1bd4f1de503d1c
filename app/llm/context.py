"""Fitting a conversation into a model's context window."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.llm.types import PROMPT_TOO_LONG, ChatMessage, EngineError

# Below this many tokens of room an answer is not worth starting.
MIN_ANSWER_ROOM = 32


@dataclass(frozen=True)
class Window:
    messages: list[ChatMessage]
    dropped: int  # how many older messages were left out
    answer_room: int  # how many tokens the answer may take


def fit_to_window(
    messages: list[ChatMessage],
    count_tokens: Callable[[list[ChatMessage]], int],
    context_window: int,
    answer_room: int,
) -> Window:
    """Drop the oldest turns until the prompt leaves room for the answer.

    The system prompt and the newest message are never dropped. An answer gets the room it
    asked for when the history allows; otherwise it gets what the newest message leaves.
    """
    system = [m for m in messages[:1] if m.role == "system"]
    history = messages[len(system) :]
    dropped = 0
    while True:
        kept = system + history[dropped:]
        used = count_tokens(kept)
        if used + answer_room <= context_window:
            return Window(kept, dropped, answer_room)
        if dropped >= len(history) - 1:
            break
        dropped += 1
        # A turn is a question and its answer: never keep an answer without its question.
        while dropped < len(history) - 1 and history[dropped].role != "user":
            dropped += 1
    room = context_window - used
    if room < MIN_ANSWER_ROOM:
        raise EngineError(PROMPT_TOO_LONG, f"{used} tokens for a window of {context_window}")
    return Window(kept, dropped, room)
