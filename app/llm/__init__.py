"""The only package that talks to engines. The web layer uses `services()`."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from app.llm.catalogue import Catalogue
from app.llm.engines.llamacpp import LlamaCppEngine, machine_cores
from app.llm.scheduler import Scheduler


@dataclass
class LLMServices:
    catalogue: Catalogue
    scheduler: Scheduler


def init_app(app: Flask, services: LLMServices | None = None) -> None:
    """Build the engines from configuration; tests may hand in their own services."""
    if services is None:
        engine = LlamaCppEngine(
            models_dir=app.config["MODELS_DIR"],
            threads=app.config["LLAMA_THREADS"],
            context=app.config["LLAMA_CONTEXT"],
        )
        catalogue = Catalogue([engine], app.config["DEFAULT_MODEL"])
        # The machine's cores are one budget: as many generations at once as fit in it.
        slots = max(1, machine_cores() // engine.threads)
        services = LLMServices(catalogue, Scheduler(catalogue, slots=slots))
    app.extensions["llm"] = services


def services() -> LLMServices:
    return current_app.extensions["llm"]
