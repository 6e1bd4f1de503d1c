"""The tokens a llama-server's slots hold for recent prompts, found again by their text.

llama-server compares a new prompt with its slots' tokens, and the app sends the prompt as tokens
of its rendered text. An answer's text does not always tokenise back into the tokens the model
wrote ("hel" + "lo" is read again as "hello"): the prompt cache would then stop inside the last
answer and read the rest again. So the tokens of a conversation as the slot holds them (its
prompt, the answer as generated, the end of the turn read after it) are kept under their text; a
new prompt that starts with a known text takes those tokens and only its new text is tokenised.
The text must match exactly, so a prompt gets another's tokens only when it is the same text.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

KEPT = 64  # recent prompts per server: a few turns of each conversation under way
Tokenize = Callable[[str, bool], list[int]]  # (text, with the BOS) -> tokens
ReadsBack = Callable[[list[int], str], bool]  # whether the tokens are exactly the text


class KnownPrompts:
    def __init__(self, kept: int = KEPT) -> None:
        self._kept = kept
        self._known: OrderedDict[str, list[int]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, text: str, tokens: list[int]) -> None:
        if not text or not tokens:
            return
        with self._lock:
            self._known[text] = list(tokens)
            self._known.move_to_end(text)
            while len(self._known) > self._kept:
                self._known.popitem(last=False)

    def tokens(self, text: str, add_bos: bool, tokenize: Tokenize, reads_back: ReadsBack) -> list[int]:
        """The prompt's tokens: a known start's as they were, the rest tokenised; the whole text
        tokenised when the rest, tokenised alone, is not exactly its text (a vocabulary that
        puts a space before whatever it tokenises first would add one)."""
        with self._lock:
            start = max((known for known in self._known if text.startswith(known)), key=len, default="")
            if start:
                self._known.move_to_end(start)
                head = self._known[start]
        if not start:
            return tokenize(text, add_bos)
        rest = text[len(start) :]
        if not rest:
            return list(head)
        tail = tokenize(rest, False)
        return head + tail if reads_back(tail, rest) else tokenize(text, add_bos)
