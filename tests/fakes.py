"""A scripted engine, for tests about the web layer only (never about engines)."""

from __future__ import annotations

import threading
import time

from app.llm.types import Claim, EngineError, EngineStatus, Final, GenerationStats, ModelInfo, Phase, Text


class ScriptedEngine:
    """Streams the words it was given, one `Text` each, `delay` seconds apart.

    `fail_with` raises that EngineError code instead; every request's messages are kept in
    `requests` so tests can check what the model was shown.
    """

    name = "scripted"

    def __init__(self, words: list[str] | None = None, delay: float = 0.0, model_ids=("tiny", "other")):
        self.words = words if words is not None else ["Bonjour", " le", " monde", "."]
        self.delay = delay
        self.model_ids = model_ids
        self.fail_with: str | None = None
        self.thinking_models: set[str] = set()
        self.script: list | None = None  # chunks to stream instead of `words` (Thinking, Text)
        self.seats = 1  # answers it writes together (a server's slots)
        self.requests: list = []
        self.options: list = []  # the GenerationOptions of every request
        self.started = threading.Event()

    def list_models(self) -> list[ModelInfo]:
        return [
            ModelInfo(id=m, engine=self.name, name=m.title(), thinking=m in self.thinking_models)
            for m in self.model_ids
        ]

    def is_loaded(self, model_id: str) -> bool:
        return True

    def claim(self, model_id, options) -> Claim:
        return Claim(self.name, seats=self.seats)

    def unload(self, model_id: str) -> bool:
        return False

    def processes(self, model_id=""):
        return None  # not measured: these tests are about the web layer

    def status(self) -> EngineStatus:
        return EngineStatus(self.name, True)

    def stream_chat(self, model_id, messages, options, cancel):
        self.requests.append(messages)
        self.options.append(options)
        self.started.set()
        if self.fail_with:
            raise EngineError(self.fail_with, "scripted failure")
        yield Phase("prompt")
        stats = GenerationStats(
            prompt_tokens=sum(len(m.content.split()) for m in messages), finish_reason="stop"
        )
        for chunk in self.script or [Text(word) for word in self.words]:
            if cancel.is_set():
                stats.finish_reason = "cancelled"
                break
            if self.delay:
                time.sleep(self.delay)
            stats.completion_tokens += 1
            yield chunk
        yield Final(stats)
