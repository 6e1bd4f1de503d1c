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
    id: str  # what a conversation stores and the user picks: "SmolLM2-135M-Instruct.Q4_1", "phi3:mini"
    engine: str  # "llama.cpp" or "ollama@host:port"
    name: str  # shown in the UI
    size_bytes: int = 0  # on disk
    path: str = ""  # the GGUF file, for embedded models
    source: str = ""  # where it was found: a package name, the models folder, an Ollama host
    packaged: bool = False  # shipped with the app as a Python package: offered from the first start
    problem: str = ""  # why it cannot be used (missing, unreadable); empty when usable
    family: str = ""  # llama, qwen2, gemma3...
    parameters: str = ""  # "135M", "3.8B"
    quantization: str = ""  # Q4_1, Q4_K_M...
    context_length: int = 0  # what the model was trained for; 0 when unknown
    thinking: bool = False  # a reasoning model: it can think before answering
    loaded: bool = False
    memory_bytes: int = 0  # held while loaded (weights and context); 0 when not loaded
    # What loading it takes (the benchmark page's Fit): the context it is loaded with when the
    # admin sets none, and the f16 K and V cache per token of context; 0 when unknown.
    load_context: int = 0
    kv_bytes_per_token: int = 0
    reachable: bool = True  # False: its engine does not answer (the problem says why)
    # The engines that serve it: several Ollama hosts may have the same model, and each answer
    # goes to the least busy of those that answer (the catalogue fills it in).
    hosts: tuple[str, ...] = ()
    # llama-server: answers decoded together, the context of each, and the RAM kept for the
    # prompts evicted from the slots (its running values, else those it would start with).
    slots: int = 0
    slot_context: int = 0
    prompt_cache_mb: int = 0

    @property
    def usable(self) -> bool:
        return not self.problem


@dataclass(frozen=True)
class EngineStatus:
    """Whether an engine answers, for the admin; `detail` says why not."""

    engine: str
    reachable: bool
    version: str = ""
    detail: str = ""
    models: tuple[str, ...] = ()  # the models it lists (an unreachable host: those it had)
    last_error: str = ""  # the last failure seen, even if it has answered since
    last_error_at: float = 0.0  # when (time.time()); 0 when none
    retry_at: float = 0.0  # while unreachable: when it is asked again (time.time()); else 0


@dataclass(frozen=True)
class Claim:
    """Where one answer runs while it is written, for the scheduler.

    `pool`: the seats it takes one of: a model's engine process on this machine (llama-server
    slots, the in-process model, a local Ollama runner) or a remote Ollama host. `seats`: how
    many answers that pool writes at once, in one batch. `local`: it decodes on this machine's
    cores, which one engine process uses at a time: several answers in one batch cost little
    more than one, two separate decodes on the same cores ruin each other.
    """

    pool: str = "local"
    seats: int = 1
    local: bool = True


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
    # Load-time options, the admin's per model: an engine reloads a model when they change,
    # so they come from one place only. None = the engine's own setting.
    context: int | None = None
    threads: int | None = None
    # Let a reasoning model think first (Ollama's `think`); None = the model's own habit.
    think: bool | None = None
    # Structured output: a JSON schema (as JSON text) the answer must follow; "" = free text.
    json_schema: str = ""
    # Reuse the engine's cache of earlier prompts (the admin may switch it off, site-wide).
    cache_prompt: bool = True


# What an engine's stream yields, in order: Phase* Trimmed? (Phase|Progress|Thinking|Text)* Final.
@dataclass(frozen=True)
class Phase:
    name: str  # loading | prompt | thinking | answering


@dataclass(frozen=True)
class Trimmed:
    """Older turns left out because the conversation outgrew the context window."""

    dropped_messages: int


@dataclass(frozen=True)
class Progress:
    """Prompt tokens the engine has read since the last Progress: the work an answer did
    before its first token, by which its share of the engine's CPU is counted."""

    tokens: int


@dataclass(frozen=True)
class Text:
    """A piece of the answer."""

    text: str


@dataclass(frozen=True)
class Thinking:
    """A piece of a reasoning model's thinking, kept apart from the answer."""

    text: str


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    load_seconds: float = 0.0  # loading the model for this answer; 0 when it was loaded
    first_token_seconds: float = 0.0  # from the engine's start to the first text, thinking or answer
    first_answer_seconds: float = 0.0  # to the first answer text (after any thinking)
    total_seconds: float = 0.0
    tokens_per_second: float = 0.0  # decoding speed, first token to last
    thinking_tokens: int = 0  # part of completion_tokens
    queue_seconds: float = 0.0  # waiting for a turn, before the engine started
    concurrent: int = 1  # answers written together with this one in its pool, at most (itself included)
    cached_tokens: int = 0  # prompt tokens taken from the engine's prompt cache, not read again
    resources: dict = field(default_factory=dict)  # CPU and memory sampled while it ran (app.metrics)
    finish_reason: str = ""  # stop | length | cancelled
    dropped_messages: int = 0
    threads: int = 0
    context_window: int = 0
    engine: str = ""
    # The engine's own figures, as it reported them (Ollama's final chunk, in nanoseconds).
    engine_timings: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Final:
    stats: GenerationStats


Chunk = Phase | Trimmed | Progress | Thinking | Text | Final


class EngineError(Exception):
    """A failure the user is told about; `code` picks the translated message."""

    def __init__(self, code: str, detail: str = "", **values) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail  # technical, in English: for the log and the admin
        self.values = values  # what the user's message needs (a host, a number of seconds)

    # Set by an engine with several hosts: the host failed before the first token (connection
    # refused or reset, a 5xx answer), so another host may answer the same request instead...
    retry_elsewhere: bool = False
    # ...and the host itself is gone (not merely busy): skip it until its retry time.
    host_down: bool = False


# The codes engines raise, so the web layer can word each one for the user.
MODEL_NOT_FOUND = "model_not_found"
MODEL_UNREADABLE = "model_unreadable"
ENGINE_UNAVAILABLE = "engine_unavailable"
PROMPT_TOO_LONG = "prompt_too_long"
GENERATION_FAILED = "generation_failed"
ENGINE_UNREACHABLE = "engine_unreachable"  # connection refused or timed out
ENGINE_BUSY = "engine_busy"  # the engine's own queue is full (Ollama answers 503)
LOAD_TIMEOUT = "load_timeout"
FIRST_TOKEN_TIMEOUT = "first_token_timeout"
STALLED = "stalled"  # the stream started, then went quiet
ENGINE_CRASHED = "engine_crashed"  # the engine's process died under the answer (it is restarted)
MODEL_TOO_LARGE = "model_too_large"  # the host lacks the memory to load it
ANSWER_TOO_LONG = "answer_too_long"  # past ANSWER_MAX_CHARS: ended, what came before kept
ENGINE_REPLY_TOO_LARGE = "engine_reply_too_large"  # a line of its stream past ENGINE_LINE_MAX_BYTES

# What is read from any engine is bounded: a host sending megabytes without a line break would
# otherwise be held in memory whole, and a runaway answer stored as it came. A line of a stream
# is one token's JSON (or a listing's); an answer (thinking included) of 500,000 characters is
# some 125,000 tokens, past any context this app gives a model.
ENGINE_LINE_MAX_BYTES = 1024 * 1024
ANSWER_MAX_CHARS = 500_000
