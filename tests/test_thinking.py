"""A reasoning model's thinking, told apart from its answer when both come as one text."""

import pytest

from app.llm.thinking import ThinkSplitter, prompt_opens_thinking
from app.llm.types import Text, Thinking


def split(pieces: list[str], starts_thinking: bool = False) -> tuple[str, str]:
    splitter = ThinkSplitter(starts_thinking)
    out = [p for piece in pieces for p in splitter.feed(piece)] + splitter.flush()
    thinking = "".join(p.text for p in out if isinstance(p, Thinking))
    answer = "".join(p.text for p in out if isinstance(p, Text))
    return thinking, answer


def test_tagged_thinking_is_kept_apart_from_the_answer():
    assert split(["<think>\nLet me count.\n</think>\n\nThree."]) == ("Let me count.\n", "Three.")


@pytest.mark.parametrize("cut", range(1, 40))
def test_tags_cut_anywhere_between_chunks_are_still_recognised(cut):
    text = "<think>\nLet me count.\n</think>\n\nThree apples."
    assert split([text[:cut], text[cut:]]) == ("Let me count.\n", "Three apples.")


def test_token_by_token_stream_splits_the_same_way():
    text = "<think>a < b, so </think>b wins"
    assert split(list(text)) == ("a < b, so ", "b wins")


def test_a_distill_that_only_closes_the_tag_has_thought_everything_before_it():
    pieces = ["Hmm, 2+2", " is 4.</th", "ink>\n\nFour."]
    assert split(pieces, starts_thinking=True) == ("Hmm, 2+2 is 4.", "Four.")


def test_an_answer_without_tags_is_all_answer():
    assert split(["  Bonjour", " le monde"]) == ("", "Bonjour le monde")


def test_a_think_tag_inside_an_answer_is_part_of_the_answer():
    assert split(["Use the ", "<think>", " tag."]) == ("", "Use the <think> tag.")


def test_thinking_cut_short_by_stop_is_kept_as_thinking():
    assert split(["<think>I was about to </thi"]) == ("I was about to </thi", "")


def test_prompt_ending_inside_an_opened_think_block_is_recognised():
    assert prompt_opens_thinking("<|Assistant|><think>\n")
    assert not prompt_opens_thinking("<|Assistant|>")
