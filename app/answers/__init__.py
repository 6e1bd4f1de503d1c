"""Answers: the one pipeline through which every feature asks a model (chat, compare, API,
benchmarks), the answers being written as jobs of their own, and following them as events.

    pipeline.py  a place in the queue, then the job (`place`, `start`)
    live.py      an answer being written: its numbered events, its readers
    registry.py  every answer being written; the keeper that saves them and ends the forbidden
    stream.py    following an answer over Server-Sent Events, resuming from any event
    saving.py    the answer in the database, and its measurements
    asking.py    the checks every request for an answer makes first
    messages.py  what the user reads, in their language
"""

from __future__ import annotations

from flask import Flask, current_app

from app.answers.pipeline import Asking, Refused, place, start
from app.answers.registry import Answers

__all__ = ["Answers", "Asking", "Refused", "init_app", "place", "registry", "start"]


def init_app(app: Flask) -> None:
    app.extensions["answers"] = Answers(app)


def registry() -> Answers:
    return current_app.extensions["answers"]
