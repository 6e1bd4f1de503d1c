"""Every model of every engine, merged with the admin's choices.

The admin's choices (enabled, default, per-model options) live in the database; the catalogue
receives them through a callable, read anew on every use, so a change applies to the very
next message without a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from app.llm.engines.base import Engine
from app.llm.types import EngineStatus, GenerationOptions, ModelInfo


@dataclass(frozen=True)
class ModelPreferences:
    """The admin's settings for one model; None keeps the configured default."""

    enabled: bool = True
    system_prompt: str = ""
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    context: int | None = None  # load-time: the admin's alone
    threads: int | None = None  # load-time: the admin's alone
    max_tokens: int | None = None
    think: bool | None = None


@dataclass(frozen=True)
class Preferences:
    default_model: str = ""  # the admin's choice; empty = the configured one
    models: dict[str, ModelPreferences] = field(default_factory=dict)
    # The engines reuse the prompts they have already read (the admin may switch it off).
    prompt_cache: bool = True


@dataclass(frozen=True)
class Entry:
    """A model as the catalogue offers it: what its engine says, and what the admin chose."""

    info: ModelInfo
    prefs: ModelPreferences

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def offered(self) -> bool:
        """Users may pick it: it works and the admin has not disabled it."""
        return self.info.usable and self.prefs.enabled


class Catalogue:
    def __init__(
        self,
        engines: list[Engine],
        default_model: str,
        preferences: Callable[[], Preferences] = Preferences,
    ) -> None:
        self.engines = engines
        self.default_model = default_model  # from configuration
        self.preferences = preferences

    def served(self) -> dict[str, list[tuple[Engine, ModelInfo]]]:
        """Every model id found, in engine order, with the engines that may serve it.

        A name on two engines is served by the first, except between interchangeable engines
        (Ollama hosts): a model on several hosts may be served by any of them."""
        found: dict[str, list[tuple[Engine, ModelInfo]]] = {}
        for engine in self.engines:
            for model in engine.list_models():
                serving = found.setdefault(model.id, [])
                if not serving or (_interchangeable(serving[0][0]) and _interchangeable(engine)):
                    serving.append((engine, model))
        return found

    def candidates(self, model_id: str) -> list[tuple[Engine, ModelInfo]]:
        """The engines that may serve this model, in engine order: one, or several hosts."""
        return self.served().get(model_id, [])

    def entries(self) -> list[Entry]:
        """Every model found, once each, in engine order (see `served`). A model on several
        hosts is described by the first that can serve it, and names all of them."""
        prefs = self.preferences().models
        return [
            Entry(_described(serving), prefs.get(model_id, ModelPreferences()))
            for model_id, serving in self.served().items()
        ]

    def offered(self) -> list[Entry]:
        return [entry for entry in self.entries() if entry.offered]

    def entry(self, model_id: str) -> Entry | None:
        return next((entry for entry in self.entries() if entry.id == model_id), None)

    def find(self, model_id: str) -> tuple[Engine, ModelInfo] | None:
        """The engine that serves the model (among several hosts: the first that can)."""
        serving = self.candidates(model_id)
        return next((found for found in serving if found[1].usable), serving[0] if serving else None)

    def default(self, offered: list[Entry] | None = None) -> Entry | None:
        """The admin's default, else the configured one, else the first model offered.

        `offered`: the list the caller already has (each listing asks every engine)."""
        offered = self.offered() if offered is None else offered
        for wanted in (self.preferences().default_model, self.default_model):
            chosen = next((entry for entry in offered if entry.id == wanted), None)
            if chosen:
                return chosen
        return offered[0] if offered else None

    def statuses(self) -> list[EngineStatus]:
        return [engine.status() for engine in self.engines]

    def unload(self, model_id: str) -> bool:
        """Free the model's memory on every engine (host) that has it loaded."""
        return any([engine.unload(model_id) for engine, _ in self.candidates(model_id)])

    def options_for(
        self,
        entry: Entry,
        base: GenerationOptions,
        think: bool | None = None,
        chosen: Mapping[str, float | int] | None = None,
    ) -> GenerationOptions:
        """The configured options, overridden by the admin's for this model, then the user's
        thinking choice and sampling choices (`chosen`, already checked against the admin's
        limits). Load-time options come from the admin only."""
        prefs = entry.prefs
        chosen = chosen or {}
        prompt_cache = self.preferences().prompt_cache
        return replace(
            base,
            temperature=_either(chosen.get("temperature"), _either(prefs.temperature, base.temperature)),
            top_k=_either(chosen.get("top_k"), _either(prefs.top_k, base.top_k)),
            top_p=_either(chosen.get("top_p"), _either(prefs.top_p, base.top_p)),
            max_tokens=_either(chosen.get("max_tokens"), _either(prefs.max_tokens, base.max_tokens)),
            context=prefs.context,
            threads=prefs.threads,
            # A reasoning model thinks unless told otherwise, as the user's switch shows it.
            think=_either(think, _either(prefs.think, True if entry.info.thinking else None)),
            cache_prompt=base.cache_prompt and prompt_cache,
        )


def _interchangeable(engine: Engine) -> bool:
    return getattr(engine, "interchangeable", False)


def _described(serving: list[tuple[Engine, ModelInfo]]) -> ModelInfo:
    """The first usable description (else the first), naming every engine that has the model."""
    model = next((m for _, m in serving if m.usable), serving[0][1])
    return replace(
        model,
        hosts=tuple(engine.name for engine, _ in serving),
        loaded=any(m.loaded for _, m in serving),  # on any host: the admin may unload it
        memory_bytes=sum(m.memory_bytes for _, m in serving),
    )


def _either(chosen, fallback):
    return fallback if chosen is None else chosen
