"""Documents cut into passages: small enough that a few of them fit a CPU's reading budget,
overlapping so an answer that spans a cut is whole in one of them, and never across pages,
so a citation names one page."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.documents.words import estimate_tokens

# ~200 tokens: three passages are ~600 tokens, ~15 s of reading for a 1.5B model on 2 cores.
TARGET_CHARS = 720
OVERLAP_CHARS = 140
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")


@dataclass(frozen=True)
class Piece:
    page: int | None
    heading: str
    text: str
    tokens: int


def _sentences(text: str) -> list[str]:
    """`text` in sentences (lines count as ends: lists and tables), long ones cut at words."""
    out = []
    for sentence in _SENTENCE_END.split(text):
        sentence = sentence.strip()
        while len(sentence) > TARGET_CHARS:
            cut = sentence.rfind(" ", 0, TARGET_CHARS)
            cut = cut if cut > TARGET_CHARS // 2 else TARGET_CHARS
            out.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            out.append(sentence)
    return out


def _overlap(sentences: list[str]) -> list[str]:
    """The last sentences of a passage, up to OVERLAP_CHARS, that open the next one."""
    kept: list[str] = []
    size = 0
    for sentence in reversed(sentences):
        if size + len(sentence) > OVERLAP_CHARS:
            break
        kept.insert(0, sentence)
        size += len(sentence) + 1
    return kept


def cut(sections) -> list[Piece]:
    """The passages of a document's sections (app.documents.extract.Section), in order."""
    pieces: list[Piece] = []
    for section in sections:
        current: list[str] = []
        size = 0
        fresh = 0  # sentences of `current` not carried over from the passage before
        for sentence in _sentences(section.text):
            if current and size + len(sentence) > TARGET_CHARS and fresh:
                pieces.append(_piece(section, current))
                current = _overlap(current)
                size = sum(len(s) + 1 for s in current)
                fresh = 0
            current.append(sentence)
            size += len(sentence) + 1
            fresh += 1
        if fresh:
            pieces.append(_piece(section, current))
    return pieces


def _piece(section, sentences: list[str]) -> Piece:
    text = "\n".join(sentences)
    return Piece(section.page, section.heading[:300], text, estimate_tokens(text))
