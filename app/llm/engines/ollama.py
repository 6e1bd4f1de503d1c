"""Ollama hosts, through the official `ollama` client: one engine per host.

The answer is read in a thread of its own so that this generator can keep time: the `ollama`
client blocks on each read, and a model that takes minutes to load on a CPU sends nothing at
all meanwhile (the response's headers only leave after the load). Separate deadlines apply
to the load, to the first token of a loaded model, and to silence once the stream has begun.
Stopping shuts the connection's socket, which is how Ollama learns to stop generating: it
cancels a request whose client went away.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import queue
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urlsplit

import httpx
import ollama
import psutil

from app.llm.thinking import ThinkSplitter, note_first
from app.llm.types import (
    ENGINE_BUSY,
    ENGINE_LINE_MAX_BYTES,
    ENGINE_REPLY_TOO_LARGE,
    ENGINE_UNREACHABLE,
    FIRST_TOKEN_TIMEOUT,
    GENERATION_FAILED,
    LOAD_TIMEOUT,
    MODEL_NOT_FOUND,
    MODEL_TOO_LARGE,
    STALLED,
    ChatMessage,
    Chunk,
    Claim,
    EngineError,
    EngineStatus,
    Final,
    GenerationOptions,
    GenerationStats,
    ModelInfo,
    Phase,
    Thinking,
)

log = logging.getLogger(__name__)

# Ollama's own figures in its final chunk, kept with the answer as it sent them.
OLLAMA_TIMINGS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
    "done_reason",
)
TICK = 0.25  # how often the reading loop looks at the clock and at Stop
LISTING_TIMEOUT = 5.0  # seconds for a listing, details or unload request to answer
# The context Ollama loads a model with when a request sets no num_ctx (OLLAMA_CONTEXT_LENGTH's
# default since Ollama 0.6); the admin's context setting replaces it.
OLLAMA_DEFAULT_CONTEXT = 4096
UNREACHABLE_RETRY = 30.0  # seconds before a host that failed to answer is asked again
GATEWAY_ERRORS = (502, 504)  # a proxy in front of Ollama says the Ollama behind it is gone
# A listing (/api/tags, /api/show) is one line of JSON: a few kB a model, far more allowed.
LISTING_LINE_MAX_BYTES = 16 * 1024 * 1024


def is_this_machine(hostname: str) -> bool:
    """Whether a host name points at this machine: loopback, 0.0.0.0, or its own name."""
    if hostname in ("localhost", socket.gethostname(), socket.getfqdn()):
        return True
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def host_label(url: str) -> str:
    """ "http://gpu1:11434" -> "gpu1:11434": how the host is named to the admin."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    return parts.netloc or url


class OllamaEngine:
    # The same model name on two Ollama hosts is the same model: the catalogue lists it once,
    # and the scheduler sends each answer to the least busy host that has it.
    interchangeable = True

    def __init__(
        self,
        host: str,
        connect_timeout: float = 3.0,
        first_token_timeout: float = 120.0,
        stall_timeout: float = 60.0,
        load_timeout: float = 600.0,
        keep_alive: str = "30m",
        list_ttl: float = 5.0,
        parallel: int = 1,
        process_pattern: str = "ollama",
        retry_seconds: float = UNREACHABLE_RETRY,
    ) -> None:
        self.host = host if "://" in host else f"http://{host}"
        self.name = f"ollama@{host_label(self.host)}"
        self.connect_timeout = connect_timeout
        self.first_token_timeout = first_token_timeout
        self.stall_timeout = stall_timeout
        self.load_timeout = load_timeout
        self.keep_alive = keep_alive
        self.list_ttl = list_ttl
        self.parallel = max(1, parallel)
        self.retry_seconds = retry_seconds  # a host found down is skipped this long, then asked again
        # How the Ollama server and its runner processes are named on this machine.
        self.process_pattern = re.compile(process_pattern)
        # An Ollama on this machine decodes on the cores the embedded engine uses too.
        self.local = is_this_machine(urlsplit(self.host).hostname or "")
        # Loading the CA certificates takes ~70 ms: once per engine, and only for HTTPS.
        self.verify = ssl.create_default_context() if self.host.startswith("https:") else False
        # Listing, details, unload: short requests, so a dead host costs little.
        self._client = ollama.Client(
            self.host,
            timeout=httpx.Timeout(LISTING_TIMEOUT, connect=connect_timeout),
            transport=_BoundedTransport(LISTING_LINE_MAX_BYTES, verify=self.verify),
        )
        self._lock = threading.Lock()  # guards the listing below; never held over the network
        self._next_listing = 0.0  # time.monotonic() after which the host is asked again
        self._refreshing = False
        self._known: list[ModelInfo] = []  # the last listing the host gave
        self._models: list[ModelInfo] = []
        self._status = EngineStatus(self.name, reachable=False, detail="not contacted yet")
        self._last_error = ("", 0.0)  # the last failure seen, and when (time.time())
        self._retry_at = 0.0  # while down: when (time.time()) it is asked again
        self._details: dict[tuple[str, str], dict] = {}  # /api/show, by (name, digest)
        self._load_options: dict[str, tuple] = {}  # the load-time options last sent, per model

    # -- catalogue -------------------------------------------------------------------------
    def list_models(self) -> list[ModelInfo]:
        """The host's models; asked again at most every `list_ttl` seconds (pages list them).

        One thread asks while the others keep the previous answer, so a slow host slows one
        request, not every page.
        """
        with self._lock:
            if time.monotonic() < self._next_listing or self._refreshing:
                return self._models
            self._refreshing = True
        try:
            models = self._known = self._fetch_models()
            status = EngineStatus(self.name, True, version=self._version())
        except Exception as exc:  # any failure: the host is shown as unreachable, with why
            log.warning("Ollama host %s: %s", self.host, _describe(exc))
            with self._lock:
                self._refreshing = False
                self._mark_down(_describe(exc))
                return self._models
        with self._lock:
            self._models, self._status = models, status
            self._next_listing = time.monotonic() + self.list_ttl
            self._retry_at = 0.0
            self._refreshing = False
        return models

    def _mark_down(self, detail: str) -> None:
        """The host failed: shown unreachable, its models listed unusable (so their
        conversations say what is wrong, and answers go to another host that has them), and
        not asked again for `retry_seconds` (each try costs a connect timeout). The caller
        holds the lock."""
        self._status = EngineStatus(self.name, False, detail=detail)
        problem = f"host unreachable: {detail}"
        self._models = [
            replace(m, problem=problem, reachable=False, loaded=False, memory_bytes=0) for m in self._known
        ]
        wait = max(self.list_ttl, self.retry_seconds)
        self._next_listing = time.monotonic() + wait
        self._retry_at = time.time() + wait
        self._last_error = (detail, time.time())

    def went_down(self, detail: str) -> None:
        """An answer found the host gone: skip it until its retry time, as a failed listing."""
        log.warning(
            "Ollama host %s failed an answer: %s; asked again in %.0f s",
            self.host,
            detail,
            self.retry_seconds,
        )
        with self._lock:
            self._mark_down(detail)

    @property
    def answered(self) -> bool:
        """Whether the host answered its last listing (the catalogue's models are then its own)."""
        with self._lock:
            return self._status.reachable

    def status(self) -> EngineStatus:
        models = self.list_models()
        with self._lock:
            (error, error_at), retry_at, status = self._last_error, self._retry_at, self._status
        return replace(
            status,
            models=tuple(m.id for m in models),
            last_error=error,
            last_error_at=error_at,
            retry_at=retry_at if not status.reachable else 0.0,
        )

    def forget_listing(self) -> None:
        """The next listing asks the host again (after an unload, for instance)."""
        with self._lock:
            self._next_listing = 0.0

    def _fetch_models(self) -> list[ModelInfo]:
        running = {m.model: m for m in self._client.ps().models}
        models = []
        for tag in self._client.list().models:
            details = self._show(tag.model, tag.digest or "")
            info = tag.details
            loaded = running.get(tag.model)
            models.append(
                ModelInfo(
                    id=tag.model,
                    engine=self.name,
                    name=tag.model,
                    size_bytes=int(tag.size or 0),
                    source=self.host,
                    family=(info.family if info else "") or "",
                    parameters=(info.parameter_size if info else "") or "",
                    quantization=(info.quantization_level if info else "") or "",
                    context_length=details.get("context_length", 0),
                    load_context=OLLAMA_DEFAULT_CONTEXT,
                    kv_bytes_per_token=details.get("kv_bytes_per_token", 0),
                    thinking=details.get("thinking", False),
                    loaded=loaded is not None,
                    memory_bytes=int(loaded.size or 0) if loaded else 0,
                    slots=self.parallel,  # its OLLAMA_NUM_PARALLEL, as configured here
                )
            )
        return models

    def _version(self) -> str:
        # The only call the `ollama` client lacks: a plain GET on its HTTP client, for the admin.
        try:
            response = self._client._client.get("/api/version")
            return str(response.json().get("version", ""))
        except (httpx.HTTPError, ValueError, AttributeError):
            return ""

    def _show(self, model: str, digest: str) -> dict:
        key = (model, digest)
        if key not in self._details:
            try:
                shown = self._client.show(model)
            except ollama.ResponseError as exc:
                log.warning("Ollama %s: no details for %s: %s", self.host, model, exc)
                return {}
            info = shown.modelinfo or {}
            arch = info.get("general.architecture", "")
            self._details[key] = {
                "context_length": int(info.get(f"{arch}.context_length") or 0),
                "thinking": "thinking" in (shown.capabilities or []),
                "kv_bytes_per_token": _kv_bytes_per_token(info, arch),
            }
        return self._details[key]

    def is_loaded(self, model_id: str) -> bool:
        return any(m.id == model_id and m.loaded for m in self.list_models())

    def processes(self, model_id: str = "") -> list | None:
        """The Ollama server and its runners, when the host is this machine: found by name
        (`process_pattern`); None for a remote host, or when none is found."""
        if not self.local:
            return None
        found = []
        for process in psutil.process_iter(["name", "cmdline"]):
            cmdline = process.info["cmdline"] or []
            program = cmdline[0].rsplit("/", 1)[-1] if cmdline else ""
            if any(self.process_pattern.search(name) for name in (process.info["name"] or "", program)):
                found.append(process)
        return found or None

    def claim(self, model_id: str, options: GenerationOptions) -> Claim:
        """`parallel` answers at once, in one batch (its OLLAMA_NUM_PARALLEL). On this machine,
        each model's runner is one engine process on the shared cores; a remote host is a pool
        of its own."""
        if self.local:
            return Claim(f"{self.name}/{model_id}", seats=self.parallel, local=True)
        return Claim(self.name, seats=self.parallel, local=False)

    def unload(self, model_id: str) -> bool:
        """Free the model's memory on the host now (keep_alive 0); False when it was not loaded."""
        try:
            if self._running(model_id) is None:
                return False
            self._client.generate(model=model_id, keep_alive=0)
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError) as exc:
            log.warning("Ollama %s: unloading %s failed: %s", self.host, model_id, exc)
            return False
        finally:
            self.forget_listing()
        return True

    def _running(self, model_id: str):
        """The host's /api/ps entry for the model, asked now; None when it is not loaded."""
        return next((m for m in self._client.ps().models if m.model == model_id), None)

    def _loaded_now(self, model_id: str, options: GenerationOptions) -> bool:
        """Whether the answer can start without a load: loaded, with the load-time options sent.

        Ollama reloads a model whose context size or threads differ from its last load.
        """
        try:
            running = self._running(model_id)
        except Exception as exc:
            raise _engine_error(exc, self) from exc
        sent = (options.context, options.threads)
        with self._lock:
            before = self._load_options.get(model_id, sent)
            self._load_options[model_id] = sent
        if running is None or before != sent:
            return False
        return not (options.context and running.context_length and running.context_length != options.context)

    def _supports_thinking(self, model_id: str) -> bool:
        # The listing as last fetched (the catalogue fetched it to offer the model): asking
        # the host again here would delay the answer. Never fetched yet: fetch it once.
        with self._lock:
            models, never_listed = self._models, self._next_listing == 0.0
        if never_listed:
            models = self.list_models()
        return any(m.id == model_id and m.thinking for m in models)

    # -- generation ------------------------------------------------------------------------
    def stream_chat(
        self,
        model_id: str,
        messages: list[ChatMessage],
        options: GenerationOptions,
        cancel: threading.Event,
    ) -> Iterator[Chunk]:
        streamed = [False]  # whether any text or thinking went out
        try:
            yield from self._stream_chat(model_id, messages, options, cancel, streamed)
        except EngineError as exc:
            if streamed[0]:  # half an answer cannot be replayed elsewhere: the error stands
                exc.retry_elsewhere = exc.host_down = False
            elif exc.host_down:
                self.went_down(exc.detail or exc.code)
            raise

    def _stream_chat(self, model_id, messages, options, cancel, streamed: list[bool]) -> Iterator[Chunk]:
        started = time.perf_counter()
        loaded = self._loaded_now(model_id, options)
        # A load on a CPU can take minutes: the user is told at once, and a longer deadline runs.
        yield Phase("prompt" if loaded else "loading")
        think = options.think if self._supports_thinking(model_id) else None
        schema = json.loads(options.json_schema) if options.json_schema else None
        call = _StreamingCall(self, model_id, messages, _ollama_options(options), think, schema)
        stats = GenerationStats(
            engine=self.name, threads=options.threads or 0, context_window=options.context or 0
        )
        splitter = ThinkSplitter()
        last_at = started
        try:
            while True:
                part = call.next(TICK)
                now = time.perf_counter()
                if cancel.is_set():
                    stats.finish_reason = "cancelled"
                    break
                if part is None:
                    self._check_deadlines(loaded, now - started, now - last_at, stats.first_token_seconds > 0)
                    continue
                last_at = now
                pieces = []
                if part.message.thinking:
                    pieces.append(Thinking(part.message.thinking))
                if part.message.content:
                    pieces += splitter.feed(part.message.content)
                if part.done:
                    pieces += splitter.flush()
                for piece in pieces:
                    streamed[0] = True
                    if isinstance(piece, Thinking):
                        stats.thinking_tokens += 1  # Ollama streams a token per chunk
                    yield from note_first(piece, stats, now - started)
                    yield piece
                if part.done:
                    _take_final_figures(stats, part)
                    break
        finally:
            call.abort()
        stats.total_seconds = time.perf_counter() - started
        if not stats.first_token_seconds:
            stats.first_token_seconds = stats.total_seconds
        yield Final(stats)

    def _check_deadlines(self, loaded: bool, waited: float, silent: float, started: bool) -> None:
        """Raise when the host has been quiet too long for where the answer is."""
        if started:
            if silent > self.stall_timeout:
                raise EngineError(STALLED, f"silent for {silent:.0f} s", seconds=int(self.stall_timeout))
            return
        limit, code = (
            (self.first_token_timeout, FIRST_TOKEN_TIMEOUT) if loaded else (self.load_timeout, LOAD_TIMEOUT)
        )
        if waited > limit:
            raise EngineError(code, f"nothing after {waited:.0f} s", seconds=int(limit))


def _take_final_figures(stats: GenerationStats, part) -> None:
    stats.engine_timings = {k: getattr(part, k) for k in OLLAMA_TIMINGS if getattr(part, k, None) is not None}
    stats.finish_reason = part.done_reason or "stop"
    stats.prompt_tokens = part.prompt_eval_count or 0
    stats.completion_tokens = part.eval_count or 0
    stats.load_seconds = (part.load_duration or 0) / 1e9
    if part.eval_count and part.eval_duration:
        stats.tokens_per_second = part.eval_count / (part.eval_duration / 1e9)


def _kv_bytes_per_token(info: dict, arch: str) -> int:
    """The f16 K and V cache one token of context takes, from /api/show's model_info (the
    GGUF header's keys); 0 when they are missing."""

    def number(key: str) -> int:
        value = info.get(f"{arch}.{key}")
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0

    layers, heads = number("block_count"), number("attention.head_count")
    if not layers or not heads:
        return 0
    head_size = number("embedding_length") // heads
    key, value = number("attention.key_length") or head_size, number("attention.value_length") or head_size
    return layers * (number("attention.head_count_kv") or heads) * (key + value) * 2


def _ollama_options(options: GenerationOptions) -> dict:
    """Ollama's option names. Load-time ones are sent only when the admin set them, and then
    always the same, or Ollama would reload the model between requests."""
    sent = {
        "temperature": options.temperature,
        "top_k": options.top_k,
        "top_p": options.top_p,
        "repeat_penalty": options.repeat_penalty,
        "num_predict": options.max_tokens,
        "seed": options.seed,
        "num_ctx": options.context,
        "num_thread": options.threads,
    }
    return {k: v for k, v in sent.items() if v is not None}


class _StreamingCall:
    """One /api/chat request read by a thread of its own; `next()` waits for a part a while."""

    _END = object()

    def __init__(self, engine: OllamaEngine, model_id, messages, options: dict, think, schema=None) -> None:
        self.engine = engine
        self._parts: queue.SimpleQueue = queue.SimpleQueue()
        self._sockets: list[socket.socket] = []
        self._aborted = threading.Event()
        # The read deadline is only a backstop for the thread: the caller keeps the real time.
        backstop = max(engine.load_timeout, engine.first_token_timeout, engine.stall_timeout) + 30
        self._client = ollama.Client(
            engine.host,
            timeout=httpx.Timeout(backstop, connect=engine.connect_timeout),
            transport=_BoundedTransport(ENGINE_LINE_MAX_BYTES, verify=engine.verify),
            event_hooks={"request": [self._trace_sockets]},
        )
        request = {
            "model": model_id,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "options": options,
            "keep_alive": engine.keep_alive,
            "think": think,
            "stream": True,
        }
        if schema is not None:
            request["format"] = schema  # Ollama's structured outputs
        self._thread = threading.Thread(target=self._read, args=(request,), daemon=True, name="ollama-read")
        self._thread.start()

    def _trace_sockets(self, request: httpx.Request) -> None:
        # httpcore's trace hook hands over the connection's socket: shutting it down is the
        # one way to wake a thread blocked reading it (closing the client does not).
        def trace(event: str, info: dict) -> None:
            if event == "connection.connect_tcp.complete":
                self._sockets.append(info["return_value"].get_extra_info("socket"))
                if self._aborted.is_set():
                    self._shutdown()

        request.extensions["trace"] = trace

    def _read(self, request: dict) -> None:
        try:
            for part in self._client.chat(**request):
                if self._aborted.is_set():
                    return
                self._parts.put(part)
            self._parts.put(self._END)
        except Exception as exc:
            if not self._aborted.is_set():
                self._parts.put(exc)
        finally:
            self._client.close()

    def next(self, timeout: float):
        """The next part, None when none came in `timeout`; raises the reader's failure."""
        try:
            part = self._parts.get(timeout=timeout)
        except queue.Empty:
            return None
        if part is self._END:
            error = EngineError(ENGINE_UNREACHABLE, "the stream ended early", host=self.engine.name)
            error.retry_elsewhere = True  # another host may answer; this one may be back at once
            raise error
        if isinstance(part, Exception):
            raise _engine_error(part, self.engine) from part
        return part

    def abort(self) -> None:
        self._aborted.set()
        self._shutdown()

    def _shutdown(self) -> None:
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed


class ReplyTooLarge(Exception):
    """A line of a host's reply ran past its bound: the reply is dropped, not held in memory."""


class _BoundedLines(httpx.SyncByteStream):
    """A reply's bytes as they arrive, failing once a line runs past `line_max` bytes: the
    `ollama` client reads its streams line by line (httpx keeps a line whole until its break)
    and its other replies whole, so a host sending megabytes without a break would fill the
    memory."""

    def __init__(self, stream: httpx.SyncByteStream, line_max: int) -> None:
        self._stream = stream
        self._line_max = line_max

    def __iter__(self) -> Iterator[bytes]:
        since_break = 0
        for chunk in self._stream:
            last_break = chunk.rfind(b"\n")
            since_break = len(chunk) - last_break - 1 if last_break >= 0 else since_break + len(chunk)
            if since_break > self._line_max:
                raise ReplyTooLarge(f"a line of more than {self._line_max} bytes")
            yield chunk

    def close(self) -> None:
        self._stream.close()


class _BoundedTransport(httpx.HTTPTransport):
    def __init__(self, line_max: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self._line_max = line_max

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        response.stream = _BoundedLines(response.stream, self._line_max)
        return response


def _engine_error(exc: Exception, engine: OllamaEngine) -> EngineError:
    """An `ollama`/httpx failure as one of the codes the user's message is chosen by; marked
    when another host may answer instead (the host failed), and when the host is gone."""
    error = _coded_error(exc, engine)
    if isinstance(exc, ConnectionError | httpx.TransportError):  # refused, reset, timed out
        error.retry_elsewhere = True
        # Down (skipped for OLLAMA_RETRY_SECONDS) only when it cannot be reached at all: a reset
        # or a cut stream may be one answer's trouble, and on a single host would refuse every
        # answer for that long.
        error.host_down = _cannot_connect(exc)
    elif isinstance(exc, ollama.ResponseError) and exc.status_code >= 500 and error.code != MODEL_TOO_LARGE:
        # A full queue (503) or a failed runner (500): the host answers, so it stays in use;
        # a gateway's 502 or 504: the Ollama behind the proxy is gone.
        error.retry_elsewhere = True
        error.host_down = exc.status_code in GATEWAY_ERRORS
    return error


def _cannot_connect(exc: Exception) -> bool:
    """The host could not be reached at all: refused, or no answer to connect. The `ollama`
    client says so with a plain ConnectionError; a reset is one of its subclasses."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | ConnectionRefusedError) or (
        type(exc) is ConnectionError
    )


def _coded_error(exc: Exception, engine: OllamaEngine) -> EngineError:
    detail = _describe(exc)
    if isinstance(exc, ReplyTooLarge):
        return EngineError(ENGINE_REPLY_TOO_LARGE, detail)
    if isinstance(exc, ollama.ResponseError):
        if exc.status_code == 404:
            return EngineError(MODEL_NOT_FOUND, detail)
        if exc.status_code == 503:
            return EngineError(ENGINE_BUSY, detail, host=engine.name)
        if "more system memory" in str(exc.error):  # "model requires more system memory (…) than…"
            return EngineError(MODEL_TOO_LARGE, detail)
        return EngineError(GENERATION_FAILED, detail)
    if isinstance(exc, ConnectionError | httpx.TransportError):
        return EngineError(ENGINE_UNREACHABLE, detail, host=engine.name)
    return EngineError(GENERATION_FAILED, detail)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ConnectionError):  # the client's own text points at ollama.com/download
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return str(exc) or type(exc).__name__
