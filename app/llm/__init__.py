"""The only package that talks to engines. The web layer uses `services()`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app, g

from app.llm.catalogue import Catalogue, Preferences, display_name
from app.llm.engines.base import Engine
from app.llm.engines.llamacpp import LlamaCppEngine
from app.llm.engines.llamaserver import LlamaServerEngine
from app.llm.engines.ollama import OllamaEngine
from app.llm.scheduler import Meter, Scheduler

log = logging.getLogger(__name__)


@dataclass
class LLMServices:
    catalogue: Catalogue
    scheduler: Scheduler

    def close(self) -> None:
        """Stop the engine processes this app started (shutdown)."""
        for engine in self.catalogue.engines:
            close = getattr(engine, "close", None)
            if close is not None:
                close()


def init_app(
    app: Flask,
    services: LLMServices | None = None,
    preferences: Callable[[], Preferences] = Preferences,
    meter: Meter | None = None,
) -> None:
    """Build the engines from configuration; tests may hand in their own services.

    `preferences` reads the admin's choices (from the database) each time they are needed;
    `meter` measures each answer's share of its engine's CPU.
    """
    if services is None:
        config = app.config
        engines: list[Engine] = [embedded_engine(config)]
        parallel = config["OLLAMA_PARALLEL"]
        for index, host in enumerate(config["OLLAMA_HOSTS"]):
            engines.append(ollama_engine(host, config, parallel[min(index, len(parallel) - 1)]))
        catalogue = Catalogue(engines, config["DEFAULT_MODEL"], preferences)
        scheduler = Scheduler(
            catalogue,
            max_answers=config["MAX_ANSWERS"],
            max_per_user=config["MAX_ANSWERS_PER_USER"],
            meter=meter,
        )
        services = LLMServices(catalogue, scheduler)
    app.extensions["llm"] = services


def embedded_engine(config) -> Engine:
    """llama.cpp's own server, one process per model (batched answers, a prompt cache); the
    in-process llama-cpp-python when chosen, or when no llama-server is installed."""
    binary = config["LLAMA_SERVER_BIN"]
    if config["LLAMA_ENGINE"] == "server" and binary.is_file():
        return LlamaServerEngine(
            models_dir=config["MODELS_DIR"],
            binary=binary,
            run_dir=config["INSTANCE_DIR"] / "run",
            threads=config["LLAMA_THREADS"],
            context=config["LLAMA_CONTEXT"],
            slots=config["LLAMA_SLOTS"],
            cache_mb=config["PROMPT_CACHE_MB"],
            load_timeout=config["LLAMA_LOAD_TIMEOUT"],
            stall_timeout=config["OLLAMA_STALL_TIMEOUT"],
        )
    if config["LLAMA_ENGINE"] == "server":
        log.warning("no llama-server at %s: models run in this process (llama-cpp-python)", binary)
    return LlamaCppEngine(
        models_dir=config["MODELS_DIR"], threads=config["LLAMA_THREADS"], context=config["LLAMA_CONTEXT"]
    )


def ollama_engine(host: str, config, parallel: int = 1) -> OllamaEngine:
    return OllamaEngine(
        host,
        connect_timeout=config["OLLAMA_CONNECT_TIMEOUT"],
        first_token_timeout=config["OLLAMA_FIRST_TOKEN_TIMEOUT"],
        stall_timeout=config["OLLAMA_STALL_TIMEOUT"],
        load_timeout=config["OLLAMA_LOAD_TIMEOUT"],
        keep_alive=config["OLLAMA_KEEP_ALIVE"],
        list_ttl=config["OLLAMA_LIST_SECONDS"],
        parallel=parallel,
        process_pattern=config["OLLAMA_PROCESS_PATTERN"],
        # How long a host that failed is skipped before it is asked again.
        retry_seconds=config["OLLAMA_RETRY_SECONDS"],
    )


def services() -> LLMServices:
    return current_app.extensions["llm"]


def model_name(model_id: str) -> str:
    """The name users read for a model id: the admin's display name, else one made from the id.
    The catalogue's names are read once per request (each listing asks every engine)."""
    names = g.get("model_names")
    if names is None:
        names = g.model_names = services().catalogue.names()
    return display_name(model_id, names)
