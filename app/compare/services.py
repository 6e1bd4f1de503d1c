"""Comparing models on one prompt: a scratch pad, nothing of which is stored.

Each answer is an ordinary job of the scheduler, under a private key; the scheduler alone
decides whether the two answers run at the same time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _

from app.chat import sampling
from app.chat.stream import UnsavedStream
from app.llm import services as llm
from app.llm.catalogue import Entry
from app.llm.types import ChatMessage, GenerationOptions


@dataclass(frozen=True)
class Plan:
    together: bool
    message: str


class RunningAnswers:
    """Who asked for each comparison answer still being written: only they may stop it."""

    def __init__(self) -> None:
        self._owners: dict[int, int] = {}
        self._lock = threading.Lock()  # streams start and end on different server threads

    def add(self, key: int, user_id: int) -> None:
        with self._lock:
            self._owners[key] = user_id

    def owner(self, key: int) -> int | None:
        with self._lock:
            return self._owners.get(key)

    def forget(self, key: int) -> None:
        with self._lock:
            self._owners.pop(key, None)


def running_answers() -> RunningAnswers:
    return current_app.extensions["compare.running"]


class ScratchStream(UnsavedStream):
    """The chat's event stream for a comparison's answer: nothing saved, nothing measured."""

    def __init__(self, job, key: int, **kwargs) -> None:
        super().__init__(job, message_id=key, save_every=float("inf"), measure=None, **kwargs)
        self.key = key

    def __iter__(self) -> Iterator[str]:
        try:
            yield from super().__iter__()
        finally:
            running_answers().forget(self.key)


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
        _("This server's cores write one answer at a time: the second answer starts when the first ends."),
    )
