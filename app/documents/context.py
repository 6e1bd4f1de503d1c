"""The passages a question is sent with: chosen within the model's budget, written once into
the question's turn (never into the system prompt) and kept exactly as sent, so that every
later turn sends the same text and the engine's prompt cache still holds it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from flask_babel import gettext as _

from app.documents.retrieval import Passage, search, whole
from app.documents.words import estimate_tokens

MAX_PASSAGES = 8
SEARCHED = 16


@dataclass
class Gathered:
    context: str = ""  # what precedes the question in its turn ("" : nothing)
    sources: dict = field(default_factory=dict)  # stored with the question, shown under the answer
    passages: int = 0
    tokens: int = 0
    retrieval_seconds: float = 0.0


def merge_pages(passages: list[Passage]) -> list[Passage]:
    """A document's passages in order, one per page (overlaps removed): a document sent whole,
    cited by page."""
    merged: list[Passage] = []
    for passage in passages:
        last = merged[-1] if merged else None
        if last and last.document_id == passage.document_id and last.page == passage.page:
            text = last.text + "\n" + _without_overlap(last.text, passage.text)
            merged[-1] = Passage(
                last.chunk_id, last.document_id, last.document_name, last.page, last.heading,
                text, estimate_tokens(text), last.position, last.score,
            )  # fmt: skip
        else:
            merged.append(passage)
    return merged


def _without_overlap(before: str, after: str) -> str:
    """`after` without the lines it repeats from the end of `before` (the chunks' overlap)."""
    lines = after.split("\n")
    for cut in range(len(lines), 0, -1):
        if before.endswith("\n".join(lines[:cut])):
            return "\n".join(lines[cut:])
    return after


def gather(
    question: str,
    attached_now: list[dict],
    scope: list[dict],
    budget: int,
    *,
    already_sent: set[int],
    whole_before: set[int],
    embedder=None,
) -> Gathered:
    """The passages for `question`. `attached_now`: the documents sent with it ({id, tokens,
    pages, name}), sent whole when they fit `budget` together; `scope`: every document it may
    draw on (its conversation's attachments, its collections'), searched for the rest.
    `already_sent`: passages earlier turns carry (not sent twice); `whole_before`: documents an
    earlier turn sent whole (already in the conversation)."""
    chosen: list[Passage] = []
    whole_ids: list[int] = []
    used = 0
    fitting = [d for d in attached_now if d["id"] not in whole_before]
    if fitting and sum(d["tokens"] for d in fitting) <= budget:
        for document in fitting:
            pages = merge_pages(whole(document["id"]))
            chosen.extend(pages)
            used += sum(p.tokens for p in pages)
            whole_ids.append(document["id"])
    searchable = [d["id"] for d in scope if d["id"] not in whole_before and d["id"] not in whole_ids]
    started = time.perf_counter()
    found = search(question, searchable, limit=SEARCHED, embedder=embedder) if searchable else []
    seconds = time.perf_counter() - started
    retrieved = 0
    earlier = False
    for passage in found:
        if retrieved >= MAX_PASSAGES or not passage.relevant or used + passage.tokens > budget:
            continue
        if passage.chunk_id in already_sent:
            earlier = True  # it is in the conversation already, as sent then
            continue
        chosen.append(passage)
        used += passage.tokens
        retrieved += 1
    if not scope or (not chosen and (earlier or whole_before or already_sent)):
        # Nothing new to add: a follow-up draws on the passages earlier turns carry, still in
        # the conversation as sent ("say so" is for a conversation with no passage at all).
        return Gathered()
    pages = sum(d.get("pages") or 0 for d in scope)
    sources = {
        "passages": _cited(chosen),
        "read": {
            "passages": len(chosen),
            "pages": pages,
            "documents": len(scope),
            "whole": [d["name"] for d in attached_now if d["id"] in whole_ids],
        },
    }
    return Gathered(_written(chosen), sources, len(chosen), used, seconds)


def _written(passages: list[Passage]) -> str:
    """The passages as the model reads them, before the question; in the asker's language."""
    if not passages:
        return (
            _(
                "No passage of the chosen documents matches this question. Say so plainly rather "
                "than inventing an answer."
            )
            + "\n\n"
            + _("Question:")
            + " "
        )
    blocks = []
    for n, passage in enumerate(passages, 1):
        place = passage.document_name
        if passage.page:
            place += ", " + _("page %(page)s", page=passage.page)
        if passage.heading:
            place += " — " + passage.heading
        blocks.append(f"[{n}] {place}\n{passage.text.strip()}")
    return (
        _("Passages from documents:")
        + "\n\n"
        + "\n\n".join(blocks)
        + "\n\n"
        + _(
            "Answer the question below from these passages, citing each one you use by its number "
            "in brackets, like [1]. If they do not contain the answer, say so rather than inventing one."
        )
        + "\n\n"
        + _("Question:")
        + " "
    )


def prompt_with_passages(question: str, passages: list[Passage]) -> tuple[str, dict]:
    """A question and its passages as one turn, as the chat sends it (the benchmarks use it):
    (the text, the sources)."""
    context = _written(passages)
    return context + question, {"passages": _cited(passages)}


def _cited(passages: list[Passage]) -> list[dict]:
    """The passages as stored with the question: what the answer's citations point at."""
    return [
        {
            "n": n,
            "chunk_id": p.chunk_id,
            "document_id": p.document_id,
            "name": p.document_name,
            "page": p.page,
            "heading": p.heading,
            "text": p.text,
        }
        for n, p in enumerate(passages, 1)
    ]
