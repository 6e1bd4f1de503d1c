"""Comparing models on one prompt: a scratch pad, nothing of which is stored.

Each answer is an ordinary answer of the pipeline (app.answers), followed only by the page that
asked for it: it ends when that page goes. The scheduler alone decides whether the two answers
are written at the same time.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _

from app.answers import sampling
from app.llm import services as llm
from app.llm.catalogue import Entry
from app.llm.types import ChatMessage, GenerationOptions


@dataclass(frozen=True)
class Plan:
    together: bool
    message: str


def default_pair(entries: list[Entry]) -> tuple[Entry | None, Entry | None]:
    """The first two models offered; one model twice when it is the only one."""
    if not entries:
        return None, None
    return entries[0], entries[1] if len(entries) > 1 else entries[0]


def options_for(entry: Entry) -> GenerationOptions:
    """What a new chat with this model would use, thinking as the admin's default says."""
    return llm().catalogue.options_for(entry, sampling.configured(), think=None)


def prompt_for(entry: Entry, text: str) -> list[ChatMessage]:
    system = entry.prefs.system_prompt
    return ([ChatMessage("system", system)] if system else []) + [ChatMessage("user", text)]


def plan(first: Entry, second: Entry) -> Plan:
    """Whether the two answers would be written at the same time here, in the user's words."""
    together = llm().scheduler.together([(e.id, options_for(e)) for e in (first, second)])
    if together:
        return Plan(True, _("Both answers are written at the same time."))
    if first.id == second.id:
        return Plan(
            False, _("A model writes one answer at a time: the second answer starts when the first ends.")
        )
    return Plan(
        False,
        _(
            "This server's cores write one model's answers at a time: the second answer starts when "
            "the first ends."
        ),
    )
