"""Every model of every engine, and which one a new conversation gets."""

from __future__ import annotations

from app.llm.engines.base import Engine
from app.llm.types import ModelInfo


class Catalogue:
    def __init__(self, engines: list[Engine], default_model: str) -> None:
        self.engines = engines
        self.default_model = default_model

    def models(self) -> list[ModelInfo]:
        return [model for engine in self.engines for model in engine.list_models()]

    def usable(self) -> list[ModelInfo]:
        return [model for model in self.models() if model.usable]

    def find(self, model_id: str) -> tuple[Engine, ModelInfo] | None:
        for engine in self.engines:
            for model in engine.list_models():
                if model.id == model_id:
                    return engine, model
        return None

    def default(self) -> ModelInfo | None:
        """The configured default when usable, else the first usable model."""
        usable = self.usable()
        preferred = [m for m in usable if m.id == self.default_model]
        return (preferred or usable or [None])[0]
