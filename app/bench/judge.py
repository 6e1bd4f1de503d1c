"""The optional judge: a model scores an answer against the prompt's reference, 1 to 10, with a reason.

The judge is asked for JSON (VERDICT_SCHEMA, for engines that constrain their output to a schema);
a reply that cannot be read as a score from 1 to 10 gives no score, never a guessed number.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from itertools import islice
from typing import Any

from app.llm.types import ChatMessage

VERDICT_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 10},
        "reason": {"type": "string"},
    },
    "required": ["score", "reason"],
}
REASON_LIMIT = 500  # characters kept of the judge's reason
_SEARCHED_OBJECTS = 50  # a rambling reply is not searched for ever

_SYSTEM = """You grade answers written by an AI assistant.
Compare the answer with the question and with the reference, which says what a good answer contains.
Score from 1 (wrong or useless) to 10 (correct, complete and clear). Judge the content, not the length.
Give the reason in one short sentence, in the language of the question.
Reply with JSON only, exactly in this form: {"score": <integer from 1 to 10>, "reason": "<one sentence>"}"""


@dataclass(frozen=True)
class Verdict:
    score: int | None  # None = "no score": the reply could not be read as a 1–10 score
    reason: str
    raw: str  # the judge's reply as written, for the admin


def judge_messages(prompt_text: str, reference: str, answer: str) -> list[ChatMessage]:
    """The conversation to send to the judge; the answer is fenced off so that it reads as material."""
    user = (
        f"<question>\n{prompt_text.strip()}\n</question>\n\n"
        f"<reference>\n{reference.strip() or '(none: judge on the question alone)'}\n</reference>\n\n"
        f"<answer>\n{answer.strip() or '(empty)'}\n</answer>\n\n"
        # No literal example here: a small judge copies an example's "..." as its reason.
        "Grade the answer, as JSON with its score and its reason."
    )
    return [ChatMessage("system", _SYSTEM), ChatMessage("user", user)]


def parse_verdict(reply: str) -> Verdict:
    """Read the judge's reply: the first JSON object in it, bare, fenced or amid text.

    The score must be an integer from 1 to 10; an integral float (7.0) and a string of digits ("7")
    are read as integers too, as schema-less models write them. Anything else (7.5, "7/10", true,
    null, 0, 11, no score at all, no JSON) gives score None: "no score". A missing reason is "".
    """
    raw = reply if isinstance(reply, str) else ""
    verdict = _first_object(raw)
    reason = verdict.get("reason")
    reason = reason.strip() if isinstance(reason, str) else ""
    if len(reason) > REASON_LIMIT:
        reason = reason[: REASON_LIMIT - 1] + "…"
    return Verdict(_score(verdict.get("score")), reason, raw)


def _first_object(text: str) -> dict:
    """The first object that parses and has a score; else the first that parses; else {}."""
    decoder = json.JSONDecoder()
    found: list[dict] = []
    for match in islice(re.finditer(r"\{", text), _SEARCHED_OBJECTS):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            if "score" in value:
                return value
            found.append(value)
    return found[0] if found else {}


def _score(value: Any) -> int | None:
    if isinstance(value, bool):  # bool is a subclass of int: true is not a score of 1
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*\d{1,2}\s*", value):
        value = int(value)
    if isinstance(value, int) and 1 <= value <= 10:
        return value
    return None
