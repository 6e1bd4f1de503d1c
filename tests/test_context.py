"""Fitting a conversation into the context window: oldest turns go first, never the newest."""

import pytest

from app.llm.context import fit_to_window
from app.llm.types import PROMPT_TOO_LONG, ChatMessage, EngineError


def words(messages):
    return sum(len(m.content.split()) for m in messages)


def conversation(*turns: str, system: str | None = "sys"):
    messages = [ChatMessage("system", system)] if system else []
    for i, text in enumerate(turns):
        messages.append(ChatMessage("user" if i % 2 == 0 else "assistant", text))
    return messages


def test_everything_is_kept_when_it_fits():
    messages = conversation("a b", "c d", "e")
    window = fit_to_window(messages, words, context_window=100, answer_room=10)
    assert window.messages == messages and window.dropped == 0 and window.answer_room == 10


def test_oldest_turns_are_dropped_as_question_and_answer_pairs():
    messages = conversation("one two three", "four five", "six", "seven", "eight")
    window = fit_to_window(messages, words, context_window=9, answer_room=5)
    assert [m.content for m in window.messages] == ["sys", "six", "seven", "eight"]
    assert window.dropped == 2


def test_the_system_prompt_and_newest_message_are_never_dropped():
    messages = conversation("old " * 50, "reply", "newest question")
    window = fit_to_window(messages, words, context_window=40, answer_room=30)
    assert [m.content for m in window.messages] == ["sys", "newest question"]


def test_the_answer_gets_what_the_newest_message_leaves():
    messages = conversation("x " * 60)
    window = fit_to_window(messages, words, context_window=100, answer_room=64)
    assert window.answer_room == 100 - 61


def test_a_newest_message_larger_than_the_window_is_refused():
    with pytest.raises(EngineError) as error:
        fit_to_window(conversation("x " * 95), words, context_window=100, answer_room=64)
    assert error.value.code == PROMPT_TOO_LONG


def test_a_long_conversation_is_fitted_in_a_few_counts_not_one_per_turn_dropped():
    """Each count renders and tokenizes the whole prompt: an imported conversation of 20,000
    messages was counted once per turn dropped (10,000 times) before its question was answered."""
    messages = conversation(*[f"turn {i} of the history" for i in range(19_999)])
    counts = []

    def counted(kept):
        counts.append(len(kept))
        return words(kept)

    window = fit_to_window(messages, counted, context_window=4096, answer_room=512)
    assert len(counts) <= 20
    kept = [m.content for m in window.messages]
    assert kept[0] == "sys" and kept[-1] == "turn 19998 of the history"
    assert kept[1].startswith("turn ") and int(kept[1].split()[1]) % 2 == 0, "it starts with a question"
    assert words(window.messages) + 512 <= 4096 < words(messages[:1] + messages[window.dropped - 1 :]) + 512
