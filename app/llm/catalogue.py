"""Every model of every engine, merged with the admin's choices.

The admin's choices (enabled, default, per-model options) live in the database; the catalogue
receives them through a callable, read anew on every use, so a change applies to the very
next message without a restart.

A model the admin has never decided about (no settings stored) is new: it is offered only when
the configuration says new models are (NEW_MODELS_ENABLED), unless it is shipped with the app or
is the configured default model, so that a fresh server answers at once.

The admin's layer may also ask to hear of the next listing every engine answered
(`Preferences.keep_listed_models`): a database upgraded from before new models waited for the
admin keeps offering the models the engines list, which only a listing can name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from app.llm.engines.base import Engine
from app.llm.types import EngineStatus, GenerationOptions, ModelInfo


@dataclass(frozen=True)
class ModelPreferences:
    """The admin's settings for one model; None keeps the configured default."""

    enabled: bool = True
    display_name: str = ""  # what users read instead of the id; empty: a name made from the id
    description: str = ""  # one line users read beside the name
    system_prompt: str = ""
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    context: int | None = None  # load-time: the admin's alone
    threads: int | None = None  # load-time: the admin's alone
    max_tokens: int | None = None
    think: bool | None = None
    # Tokens of document passages sent with a question (the prompt a CPU reads before answering).
    document_tokens: int | None = None


@dataclass(frozen=True)
class Preferences:
    default_model: str = ""  # the admin's choice; empty = the configured one
    models: dict[str, ModelPreferences] = field(default_factory=dict)
    # The engines reuse the prompts they have already read (the admin may switch it off).
    prompt_cache: bool = True
    # A model with no settings stored is offered at once (True), or once the admin enables it.
    # The server passes NEW_MODELS_ENABLED; without a database (engine tests) every model is.
    new_models_enabled: bool = True
    # Called with every model id found, by the next listing every engine answered; None: not wanted.
    keep_listed_models: Callable[[list[str]], None] | None = None


@dataclass(frozen=True)
class Entry:
    """A model as the catalogue offers it: what its engine says, and what the admin chose."""

    info: ModelInfo
    prefs: ModelPreferences
    decided: bool = True  # the admin's settings are stored; False: new, as the policy says

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def name(self) -> str:
        """What users read: the admin's display name, else the engine's own name for it when it
        has one, else one made from the id."""
        engines_name = self.info.name if self.info.name != self.info.id else ""
        return self.prefs.display_name or engines_name or readable_name(self.info.id)

    @property
    def description(self) -> str:
        return self.prefs.description

    @property
    def waiting(self) -> bool:
        """New, and not offered until the admin enables it."""
        return not self.decided and not self.prefs.enabled

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
        preferences = self.preferences()
        served = self.served()
        if preferences.keep_listed_models is not None and all(_answered(e) for e in self.engines):
            preferences.keep_listed_models(list(served))
        entries = []
        for model_id, serving in served.items():
            info = _described(serving)
            prefs = preferences.models.get(model_id)
            if prefs is None:
                entries.append(Entry(info, self._new_model(info, preferences), decided=False))
            else:
                entries.append(Entry(info, prefs))
        return entries

    def _new_model(self, info: ModelInfo, preferences: Preferences) -> ModelPreferences:
        """A model the admin has not decided about: offered by the policy, or because the
        server needs it to answer on its first start (shipped with the app, the configured default)."""
        wanted = info.packaged or info.id == self.default_model
        return ModelPreferences(enabled=preferences.new_models_enabled or wanted)

    def names(self, entries: list[Entry] | None = None) -> dict[str, str]:
        """What users read for each model id found (see `display_name` for one no longer found)."""
        return {entry.id: entry.name for entry in (self.entries() if entries is None else entries)}

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


# A GGUF file's quantization at the end of its name: "….Q4_1", "…-q4_k_m", "….IQ3_XS", "…-f16".
_QUANTIZATION = re.compile(r"^(?P<base>.+?)[._-](?P<quant>I?Q\d\w*|B?F16|F32)$", re.IGNORECASE)


def readable_name(model_id: str) -> str:
    """A name people can read, made from an id when the admin gave none.

    "SmolLM2-135M-Instruct.Q4_1" -> "SmolLM2 135M Instruct (Q4_1)"; "echo:latest" -> "echo";
    "deepseek-r1:1.5b" -> "deepseek-r1 (1.5b)"; "hf.co/org/Model-GGUF:Q4_K_M" -> "Model-GGUF (Q4_K_M)".
    """
    if ":" in model_id:  # an Ollama name: name:tag, the name maybe under a namespace
        name, tag = model_id.rsplit(":", 1)
        name = name.rsplit("/", 1)[-1] or name
        return name if tag in ("", "latest") else f"{name} ({tag})"
    found = _QUANTIZATION.match(model_id)
    base, quant = (found["base"], found["quant"]) if found else (model_id, "")
    base = " ".join(base.replace("_", " ").replace("-", " ").split()) or model_id
    return f"{base} ({quant})" if quant else base


def display_name(model_id: str, names: Mapping[str, str]) -> str:
    """The name users read for a model id: the catalogue's (`names`), else one made from the id
    (a model no longer found keeps a readable label in its conversations)."""
    return names.get(model_id) or readable_name(model_id)


def _answered(engine: Engine) -> bool:
    """Whether the engine's models are its own last answer, not what it listed before it failed
    (a remote host); a local engine reads its folder, which always answers."""
    return getattr(engine, "answered", True)


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
