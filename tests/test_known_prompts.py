"""A new prompt that starts with a conversation a llama-server has just written takes that
conversation's tokens as its slot holds them; only the new text is tokenised."""

from app.llm.engines.known_prompts import KnownPrompts


def exact(tokens: list[int], text: str) -> bool:
    return True  # every piece reads back as its text, as in BPE vocabularies


class Tokeniser:
    """One token per character, as code points; remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, bool]] = []

    def __call__(self, text: str, add_bos: bool) -> list[int]:
        self.asked.append((text, add_bos))
        return ([1] if add_bos else []) + [ord(c) for c in text]


def test_a_prompt_that_starts_with_a_known_conversation_keeps_its_tokens_and_tokenises_only_the_rest():
    known, tokenise = KnownPrompts(), Tokeniser()
    known.remember("Q1 A1 ", [1, 900, 901, 902])  # the answer as the model wrote it, not as text
    assert known.tokens("Q1 A1 Q2", True, tokenise, exact) == [1, 900, 901, 902, ord("Q"), ord("2")]
    assert tokenise.asked == [("Q2", False)]  # no second BOS in the middle


def test_the_longest_known_start_wins():
    known, tokenise = KnownPrompts(), Tokeniser()
    known.remember("Q1 ", [1, 7])
    known.remember("Q1 A1 Q2 A2 ", [1, 7, 8, 9])
    assert known.tokens("Q1 A1 Q2 A2 Q3", True, tokenise, exact)[:4] == [1, 7, 8, 9]


def test_a_prompt_that_differs_anywhere_in_the_known_text_is_tokenised_whole():
    known, tokenise = KnownPrompts(), Tokeniser()
    known.remember("Alice: my secret is 42. ", [1, 500, 501])
    other = "Alice: my secret is 43. Q"
    assert known.tokens(other, True, tokenise, exact) == tokenise(other, True)


def test_the_same_text_again_needs_no_tokenising():
    known, tokenise = KnownPrompts(), Tokeniser()
    known.remember("Q1 A1 ", [1, 5, 6])
    assert known.tokens("Q1 A1 ", True, tokenise, exact) == [1, 5, 6] and tokenise.asked == []


def test_only_the_most_recent_prompts_are_kept():
    known, tokenise = KnownPrompts(kept=2), Tokeniser()
    for n in range(3):
        known.remember(f"conversation {n} ", [1, 100 + n])
    assert known.tokens("conversation 0 more", True, tokenise, exact) == tokenise("conversation 0 more", True)
    assert known.tokens("conversation 2 more", True, tokenise, exact)[:2] == [1, 102]


def test_a_rest_that_would_not_read_back_as_itself_makes_the_whole_prompt_tokenised():
    """A SentencePiece vocabulary puts a space before whatever it tokenises first: the question
    tokenised alone would be one the rendered prompt does not have."""
    known, tokenise = KnownPrompts(), Tokeniser()
    known.remember("[INST] ", [1, 900])
    never = lambda tokens, text: False  # noqa: E731
    assert known.tokens("[INST] Q2", True, tokenise, never) == tokenise("[INST] Q2", True)
