"""The only package that talks to engines. The web layer uses `services()`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app

from app.llm.catalogue import Catalogue, Preferences
from app.llm.engines.base import Engine
from app.llm.engines.llamacpp import LlamaCppEngine, machine_cores
from app.llm.engines.ollama import OllamaEngine
from app.llm.scheduler import Scheduler


@dataclass
class LLMServices:
    catalogue: Catalogue
    scheduler: Scheduler


def init_app(
    app: Flask, services: LLMServices | None = None, preferences: Callable[[], Preferences] = Preferences
) -> None:
    """Build the engines from configuration; tests may hand in their own services.

    `preferences` reads the admin's choices (from the database) each time they are needed.
    """
    if services is None:
        config = app.config
        embedded = LlamaCppEngine(
            models_dir=config["MODELS_DIR"], threads=config["LLAMA_THREADS"], context=config["LLAMA_CONTEXT"]
        )
        engines: list[Engine] = [embedded] + [ollama_engine(host, config) for host in config["OLLAMA_HOSTS"]]
        catalogue = Catalogue(engines, config["DEFAULT_MODEL"], preferences)
        # This machine's cores are one budget; a remote Ollama host takes its own number at once.
        remote = {e.name: e.parallel for e in engines if isinstance(e, OllamaEngine) and not e.local}
        scheduler = Scheduler(catalogue, cores=machine_cores(), pools=remote, max_jobs=config["MAX_STREAMS"])
        services = LLMServices(catalogue, scheduler)
    app.extensions["llm"] = services


def ollama_engine(host: str, config) -> OllamaEngine:
    return OllamaEngine(
        host,
        connect_timeout=config["OLLAMA_CONNECT_TIMEOUT"],
        first_token_timeout=config["OLLAMA_FIRST_TOKEN_TIMEOUT"],
        stall_timeout=config["OLLAMA_STALL_TIMEOUT"],
        load_timeout=config["OLLAMA_LOAD_TIMEOUT"],
        keep_alive=config["OLLAMA_KEEP_ALIVE"],
        list_ttl=config["OLLAMA_LIST_SECONDS"],
        parallel=config["OLLAMA_PARALLEL"],
        process_pattern=config["OLLAMA_PROCESS_PATTERN"],
        # How long a host that failed is skipped before it is asked again.
        retry_seconds=config["OLLAMA_RETRY_SECONDS"],
    )


def services() -> LLMServices:
    return current_app.extensions["llm"]
