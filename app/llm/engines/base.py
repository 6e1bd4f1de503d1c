"""The one interface every engine implements."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol

from app.llm.types import ChatMessage, Chunk, Claim, EngineStatus, GenerationOptions, ModelInfo


class Engine(Protocol):
    name: str

    def list_models(self) -> list[ModelInfo]:
        """Every model this engine can serve, with a `problem` for those it cannot."""

    def is_loaded(self, model_id: str) -> bool:
        """Whether the next answer with this model starts without a load."""

    def claim(self, model_id: str, options: GenerationOptions) -> Claim:
        """What an answer with these options takes while it runs: cores of this machine, or a
        seat on a remote host; and whether the model answers one request at a time."""

    def unload(self, model_id: str) -> bool:
        """Free the model's memory now; False when it was not loaded or is busy."""

    def processes(self) -> list | None:
        """The psutil processes doing this engine's inference on this machine; None when
        they run elsewhere (their CPU and memory are then unknown)."""

    def status(self) -> EngineStatus:
        """Whether the engine works, its version, and why not."""

    def stream_chat(
        self,
        model_id: str,
        messages: list[ChatMessage],
        options: GenerationOptions,
        cancel: threading.Event,
    ) -> Iterator[Chunk]:
        """Stream one answer; stop soon after `cancel` is set; end with one `Final`.

        Raises EngineError for failures the user should hear about.
        """
