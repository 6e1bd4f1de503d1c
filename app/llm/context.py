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

    The fewest turns to drop are found by bisection: each count renders and tokenizes the whole
    prompt, and a shorter history never counts more. Dropping one turn at a time took a count
    per turn: an imported conversation of 20,000 messages tokenized its history 10,000 times,
    holding the model (and the CPU) from everyone for as long, for one question.
    """
    system = [m for m in messages[:1] if m.role == "system"]
    history = messages[len(system) :]
    # Where the kept history may start: a turn is a question and its answer, so never at an
    # answer; at worst the newest message alone.
    starts = [0, *(i for i in range(1, len(history) - 1) if history[i].role == "user")]
    if len(history) > 1:
        starts.append(len(history) - 1)
    counted: dict[int, int] = {}

    def used(index: int) -> int:
        if index not in counted:
            counted[index] = count_tokens(system + history[starts[index] :])
        return counted[index]

    def fits(index: int) -> bool:
        return used(index) + answer_room <= context_window

    last = len(starts) - 1
    if fits(0) or not fits(last):
        chosen = 0 if fits(0) else last
    else:  # fits(last) and not fits(low): the first start that fits lies in (low, high]
        low, high = 0, last
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if fits(middle) else (middle, high)
        chosen = high
    dropped = starts[chosen]
    kept = system + history[dropped:]
    if fits(chosen):
        return Window(kept, dropped, answer_room)
    room = context_window - used(chosen)
    if room < MIN_ANSWER_ROOM:
        raise EngineError(PROMPT_TOO_LONG, f"{used(chosen)} tokens for a window of {context_window}")
    return Window(kept, dropped, room)
