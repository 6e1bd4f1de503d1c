"""The vocabulary shared by engines, the scheduler and the web layer.

Plain dataclasses: engines know nothing of Flask, users or the database.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field


class Outcome(enum.StrEnum):
    """How an answer ended: one vocabulary for messages, measurements and the event stream."""

    GENERATING = "generating"  # still streaming; never left behind after a restart
    COMPLETE = "complete"
    STOPPED = "stopped"  # the user pressed Stop
    DISCONNECTED = "disconnected"  # the browser went away
    INTERRUPTED = "interrupted"  # the server stopped or died
    ERROR = "error"


@dataclass(frozen=True)
class ModelInfo:
    id: str  # what a conversation stores and the user picks, e.g. "SmolLM2-135M-Instruct.Q4_1"
    engine: str  # "llama.cpp", later "ollama@host"
    name: str  # shown in the UI
    size_bytes: int = 0
    path: str = ""  # the GGUF file, for embedded models
    source: str = ""  # where it was found: a package name or the models folder
    problem: str = ""  # why it cannot be used (missing, unreadable); empty when usable

    @property
    def usable(self) -> bool:
        return not self.problem


@dataclass(frozen=True)
class ChatMessage:
    role: str  # system | user | assistant
    content: str


@dataclass(frozen=True)
class GenerationOptions:
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    repeat_penalty: float = 1.1
    seed: int | None = None


# What an engine's stream yields, in order: Phase* Trimmed? (Phase|Text)* Final.
@dataclass(frozen=True)
class Phase:
    name: str  # loading | prompt | answering


@dataclass(frozen=True)
class Trimmed:
    """Older turns left out because the conversation outgrew the context window."""

    dropped_messages: int


@dataclass(frozen=True)
class Text:
    text: str


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    load_seconds: float = 0.0  # loading the model for this answer; 0 when it was loaded
    first_token_seconds: float = 0.0  # from the engine's start to the first answer text
    total_seconds: float = 0.0
    tokens_per_second: float = 0.0  # decoding speed, first token to last
    finish_reason: str = ""  # stop | length | cancelled
    dropped_messages: int = 0
    threads: int = 0
    context_window: int = 0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Final:
    stats: GenerationStats


Chunk = Phase | Trimmed | Text | Final


class EngineError(Exception):
    """A failure the user is told about; `code` picks the translated message."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


# The codes engines raise, so the web layer can word each one for the user.
MODEL_NOT_FOUND = "model_not_found"
MODEL_UNREADABLE = "model_unreadable"
ENGINE_UNAVAILABLE = "engine_unavailable"
PROMPT_TOO_LONG = "prompt_too_long"
GENERATION_FAILED = "generation_failed"
