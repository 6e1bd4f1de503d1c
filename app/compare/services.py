"""Comparing models on one prompt: a scratch pad, nothing of which is stored.

Each answer is an ordinary answer of the pipeline (app.answers), followed only by the page that
asked for it: it ends when that page goes. The page asks for them one after the other, in the
order of its columns; the scheduler alone decides whether they are written at the same time.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask_babel import gettext as _

from app.answers import sampling
from app.answers.pipeline import Refused
from app.llm import services as llm
from app.llm.catalogue import Entry
from app.llm.types import ChatMessage, GenerationOptions

COMPARED_MODELS = 4  # at most in one comparison, as /api/v1/compare allows

# This process's comparison answers, forgotten with them: what a person is comparing now.
_comparing: weakref.WeakSet = weakref.WeakSet()
# Answers past the count and not yet remembered, by person.
_being_started: Counter[int] = Counter()
_lock = threading.Lock()


@dataclass(frozen=True)
class Plan:
    together: bool
    message: str


def _comparing_now(user_id: int) -> int:
    """How many of the person's comparison answers are being written, waiting or started."""
    started = sum(1 for live in _comparing if live.user_id == user_id and not live.ended.is_set())
    return started + _being_started[user_id]


@contextmanager
def comparison_place(user_id: int) -> Iterator[bool]:
    """A place among the person's comparison answers (COMPARED_MODELS at most), held from the
    count until the answer is `remember`ed, so that answers asked at the same instant cannot all
    pass the count; yields whether this answer counts against the person's bound of answers at
    once: the first of a comparison does, the others of the same comparison do not, as for
    /api/v1/compare; a comparison answer of theirs still running marks the same one."""
    with _lock:
        running = _comparing_now(user_id)
        if running >= COMPARED_MODELS:
            raise Refused(
                429,
                _(
                    "A comparison has %(max)d models at most: wait for its answers to end.",
                    max=COMPARED_MODELS,
                ),
                retry_after=10,
            )
        _being_started[user_id] += 1
    try:
        yield running == 0
    finally:
        with _lock:
            _being_started[user_id] -= 1
            if not _being_started[user_id]:
                del _being_started[user_id]


def remember(live) -> None:
    with _lock:
        _comparing.add(live)


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


def plan(entries: list[Entry]) -> Plan:
    """Whether the answers would be written at the same time here, in the user's words."""
    together = llm().scheduler.together([(e.id, options_for(e)) for e in entries])
    two = len(entries) == 2
    if together:
        if two:
            return Plan(True, _("Both answers are written at the same time."))
        return Plan(True, _("All %(count)d answers are written at the same time.", count=len(entries)))
    if len({e.id for e in entries}) == 1:
        if two:
            return Plan(
                False, _("A model writes one answer at a time: the second answer starts when the first ends.")
            )
        return Plan(
            False,
            _("A model writes one answer at a time: each answer starts when the one before it ends."),
        )
    if two:
        return Plan(
            False,
            _(
                "This server's cores write one model's answers at a time: the second answer starts when "
                "the first ends."
            ),
        )
    return Plan(
        False,
        _(
            "This server's cores write one model's answers at a time: each answer starts when the one "
            "before it ends."
        ),
    )
