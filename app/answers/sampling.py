"""An answer's sampling choices (a conversation's, an API caller's), kept within what the
admin allows.

Only per-request options are the user's: load-time ones (context window, threads) would make
Ollama reload the model for everyone, so they stay the admin's alone. The longest answer is
capped by the admin's setting for the model (else the configured one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from flask import current_app
from flask_babel import lazy_gettext as _l

from app.llm.catalogue import Entry
from app.llm.types import GenerationOptions


@dataclass(frozen=True)
class Choice:
    name: str
    kind: type
    low: float
    high: float | None  # None: the admin's answer length for the model
    label: str


SHORTEST_ANSWER = 16  # tokens: fewer makes no answer worth reading
# How a thinking choice is written in forms and JSON; "" leaves it to the admin's default.
THINK_CHOICES: dict[str, bool | None] = {"": None, "on": True, "off": False}

CHOICES = (
    Choice("temperature", float, 0.0, 2.0, _l("Temperature")),
    Choice("top_p", float, 0.01, 1.0, _l("Top P")),
    Choice("top_k", int, 1, 200, _l("Top K")),
    Choice("max_tokens", int, SHORTEST_ANSWER, None, _l("Longest answer (tokens)")),
)


class Refused(ValueError):
    """A choice out of bounds or not a number; the message says which and why."""


def configured(seed: int | None = None) -> GenerationOptions:
    """The options the configuration gives every answer (before the admin's and the user's):
    the answer length, temperature and seed (`seed`, a caller's own, wins)."""
    config = current_app.config
    if seed is None and config["GENERATION_SEED"] >= 0:
        seed = config["GENERATION_SEED"]
    return GenerationOptions(
        max_tokens=config["MAX_ANSWER_TOKENS"], temperature=config["GENERATION_TEMPERATURE"], seed=seed
    )


def answer_limit(entry: Entry | None, configured: int) -> int:
    """The longest answer the admin allows for this model."""
    return entry.prefs.max_tokens if entry and entry.prefs.max_tokens else configured


def parse(data: Mapping, limit: int) -> dict:
    """The choices of a form or JSON body: {} for fields left empty (the admin's default).

    Raises Refused with a translated message for the first bad value.
    """
    from flask_babel import gettext as _

    chosen = {}
    for choice in CHOICES:
        raw = data.get(choice.name, "")
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        high = limit if choice.high is None else choice.high
        try:
            if isinstance(raw, bool):
                raise ValueError
            number = float(raw.strip().replace(",", ".") if isinstance(raw, str) else raw)
            if not math.isfinite(number) or (choice.kind is int and number != int(number)):
                raise ValueError  # nan, inf (JSON's 1e999 too), or 2.5 for a whole number
            value = choice.kind(number)
        except (TypeError, ValueError):
            raise Refused(_("%(setting)s must be a number.", setting=choice.label)) from None
        if not choice.low <= value <= high:
            raise Refused(
                _(
                    "%(setting)s must be between %(low)s and %(high)s.",
                    setting=choice.label,
                    low=_number(choice.low),
                    high=_number(high),
                )
            )
        chosen[choice.name] = value
    return chosen


def within(chosen: Mapping, limit: int) -> dict:
    """Stored choices as they apply now: the admin may have lowered the limit since."""
    applied = dict(chosen)
    if "max_tokens" in applied:
        applied["max_tokens"] = min(int(applied["max_tokens"]), limit)
    return applied


def _number(value: float) -> str:
    return f"{value:g}"
