"""A conversation's title as plain words: the Markdown a first message was written in ("## Rapport",
"**les points clés**") is markup for an answer, not words of a title in a sidebar, a page's header,
a search result or a file name."""

from __future__ import annotations

import re

TITLE_LENGTH = 60

# A line's block markers, repeated ("> - 1. text"): heading, quote, list item.
_BLOCK_MARKS = re.compile(r"^\s{0,3}(?:#{1,6}(?=\s|$)|>|[-*+](?=\s)|\d{1,9}[.)](?=\s))\s*")
# A line of markup alone: a code fence, a rule, a setext heading's underline, a table's rule.
_MARKUP_LINE = re.compile(r"^\s*(?:(?:`{3,}|~{3,}).*|[-*_=\s]{3,}|\|?[\s:|-]*-[\s:|-]*)$")
_CLOSING_HASHES = re.compile(r"\s+#+\s*$")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_CODE = re.compile(r"(`+)(.+?)\1")
# Emphasis and strike-through around words; "_" only between non-word characters, as in
# CommonMark: snake_case_names keep their underscores.
_STARS = re.compile(r"(\*{1,3})(?=\S)(.+?)(?<=\S)\1")
_UNDERSCORES = re.compile(r"(?<!\w)(_{1,3})(?=\S)(.+?)(?<=\S)\1(?!\w)")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
# What is left of a pair a cut separated ("**les points…"): runs that are never words.
_STRAY = re.compile(r"\*{2,}|(?<!\w)_{2,}|_{2,}(?!\w)|~~|`+")
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")
# Escaped characters are set aside in the Private Use Area while the markup goes, then put back.
_SET_ASIDE = 0xF0000


def plain_title(text: str) -> str:
    """`text` without its Markdown, on one line, whitespace collapsed ("" when only markup)."""
    text = _ESCAPED.sub(lambda m: chr(_SET_ASIDE + ord(m[1])), text or "")
    words = []
    for line in text.splitlines():
        if _MARKUP_LINE.fullmatch(line):
            continue
        line = _BLOCK_MARKS.sub("", line)
        while (unmarked := _BLOCK_MARKS.sub("", line)) != line:
            line = unmarked
        words.append(_CLOSING_HASHES.sub("", line))
    line = " ".join(" ".join(words).split())
    line = _IMAGE.sub(r"\1", line)
    line = _LINK.sub(r"\1", line)
    line = _AUTOLINK.sub(r"\1", line)
    line = _CODE.sub(lambda m: m[2].strip(), line)
    for pattern in (_STARS, _UNDERSCORES):
        while (unmarked := pattern.sub(r"\2", line)) != line:
            line = unmarked
    line = _STRIKE.sub(r"\1", line)
    line = _STRAY.sub("", line)
    line = re.sub(r"[\U000F0000-\U000F00FF]", lambda m: chr(ord(m[0]) - _SET_ASIDE), line)
    return " ".join(line.split())


def title_from(text: str) -> str:
    """A title from the first message: its words without their Markdown, cut at a word (no
    model call)."""
    line = plain_title(text)
    if len(line) <= TITLE_LENGTH:
        return line
    cut = line[:TITLE_LENGTH].rsplit(" ", 1)[0]
    return (cut or line[:TITLE_LENGTH]) + "…"
