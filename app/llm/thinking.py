"""Separating a reasoning model's thinking from its answer when both arrive as one text.

Ollama splits them itself (`message.thinking`) when asked with `think`; older servers, and
llama.cpp, send `<think>…</think>` inside the text. DeepSeek-R1 distills on llama.cpp often
emit only the closing tag, because their chat template already opened it in the prompt: then
the stream starts inside the thinking.
"""

from __future__ import annotations

from collections.abc import Iterator

from app.llm.types import GenerationStats, Phase, Text, Thinking

OPEN, CLOSE = "<think>", "</think>"


def prompt_opens_thinking(prompt: str) -> bool:
    """Whether a rendered prompt ends inside an opened <think> block."""
    return prompt.rstrip().endswith(OPEN)


class ThinkSplitter:
    """Feed it the text as it streams; it returns the pieces as Thinking or Text.

    Tags split across pieces are held back until they are whole. An opening tag counts only
    before any answer text (a model may well write "<think>" inside an answer about HTML).
    """

    def __init__(self, starts_thinking: bool = False) -> None:
        self.thinking = starts_thinking
        self.answered = False  # answer text seen: no more opening tag
        self.thought = starts_thinking  # some thinking happened: trim the answer's leading blank
        self._held = ""
        self._thought_text = False  # some thinking text was emitted

    def feed(self, text: str) -> list[Thinking | Text]:
        pieces: list[Thinking | Text] = []
        text = self._held + text
        self._held = ""
        while text:
            tag = CLOSE if self.thinking else OPEN
            if not self.thinking and self.answered:
                pieces.append(Text(text))
                break
            if not self.thinking and text.lstrip() and not tag.startswith(text.lstrip()[: len(tag)]):
                # Answer text without an opening tag: from now on everything is answer.
                self._emit_answer(text, pieces)
                break
            at = text.find(tag)
            if at >= 0:
                self._emit(text[:at], pieces)
                text = text[at + len(tag) :]
                self.thinking = not self.thinking
                self.thought = True
                continue
            keep = _partial_tag_suffix(text, tag)
            self._emit(text[: len(text) - keep], pieces)
            self._held = text[len(text) - keep :]
            break
        return pieces

    def flush(self) -> list[Thinking | Text]:
        """The end of the stream: whatever was held back is what it looked like."""
        held, self._held = self._held, ""
        pieces: list[Thinking | Text] = []
        self._emit(held, pieces)
        return pieces

    def _emit(self, text: str, pieces: list) -> None:
        if self.thinking:
            if not self._thought_text:
                text = text.lstrip()  # the newline after <think>
            if text:
                self._thought_text = True
                pieces.append(Thinking(text))
        else:
            self._emit_answer(text, pieces)

    def _emit_answer(self, text: str, pieces: list) -> None:
        if not self.answered:
            text = text.lstrip()  # the blank line after </think>, or before the answer
        if text:
            self.answered = True
            pieces.append(Text(text))


def _partial_tag_suffix(text: str, tag: str) -> int:
    """How many characters at the end of `text` could be the start of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


def note_first(piece: Thinking | Text, stats: GenerationStats, elapsed: float) -> Iterator[Phase]:
    """Time the first token and the first answer token; announce the phase each begins."""
    if isinstance(piece, Thinking):
        if not stats.first_token_seconds:
            stats.first_token_seconds = elapsed
            yield Phase("thinking")
    elif not stats.first_answer_seconds:
        stats.first_answer_seconds = elapsed
        stats.first_token_seconds = stats.first_token_seconds or elapsed
        yield Phase("answering")
