"""The embedded engine: GGUF models served by llama.cpp's own server, one process per model.

Why llama-server rather than a model in this process: it decodes several answers together in
one batch (continuous batching over its slots), which on a CPU gives more tokens per second in
all than one answer alone, where two separate decodes on the same cores ruin each other; and
it keeps each conversation's prefix in a slot's KV cache, and prefixes evicted from the slots
in RAM (`--cache-ram`), so a conversation's next turn reads only what is new.

The prompt is built here, as for the in-process engine (app.llm.prompting: the model's own
template, the stored answers untouched so they re-tokenise as generated), tokenised by the
server and sent as tokens to its native `/completion`, with `cache_prompt`: the server picks
the slot whose cache shares the longest prefix (no `id_slot` pinned: in the vendored version,
pinning an empty slot skips the RAM cache). A prompt that starts with a conversation the server
has just written takes that conversation's tokens as its slot holds them (known_prompts.py), so the
answers' text is not tokenised anew. Stop closes the connection, which the server takes as a cancel.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import subprocess
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from app.llm.context import fit_to_window
from app.llm.engines.gguf_files import ModelFiles, machine_cores, problem_with
from app.llm.engines.known_prompts import KnownPrompts
from app.llm.engines.llamaserver_process import LOOPBACK, ServerFailed, ServerPlan, ServerProcess, Servers
from app.llm.gguf import GGUFError, read_facts
from app.llm.prompting import ChatFormat
from app.llm.stops import StopMatcher
from app.llm.thinking import ThinkSplitter, note_first
from app.llm.types import (
    ENGINE_CRASHED,
    ENGINE_LINE_MAX_BYTES,
    ENGINE_REPLY_TOO_LARGE,
    ENGINE_UNAVAILABLE,
    GENERATION_FAILED,
    LOAD_TIMEOUT,
    MODEL_NOT_FOUND,
    MODEL_UNREADABLE,
    PROMPT_TOO_LONG,
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
    Progress,
    Trimmed,
)

log = logging.getLogger(__name__)

ENGINE_NAME = "llama-server"
TICK = 0.1  # how often the reading loop looks at Stop
ERROR_READ_BYTES = 64 * 1024  # of an error reply: its message is at the start
# Part of this machine's memory that weights, the slots' KV caches and the prompt cache may
# take together: beyond, fewer slots.
MEMORY_SHARE = 0.8
STOP_REASONS = {"eos": "stop", "word": "stop", "limit": "length"}
VERSION_TIMEOUT = 10.0  # seconds `llama-server --version` may take
# After `--version` failed, the failure is reported this long before the binary is run again:
# anyone may ask /healthz, which must not start a process per request.
VERSION_RETRY = 60.0


class LlamaServerEngine:
    name = ENGINE_NAME

    def __init__(
        self,
        models_dir: Path,
        binary: Path,
        run_dir: Path,
        threads: int = 0,
        context: int = 2048,
        slots: int = 4,
        cache_mb: int = 1024,
        max_loaded: int = 2,
        load_timeout: float = 600.0,
        stall_timeout: float = 60.0,
        memory_bytes: int | None = None,
    ) -> None:
        self.files = ModelFiles(models_dir)
        self.binary = binary
        self.threads = threads or machine_cores()
        self.context = context
        self.slots = max(1, slots)
        self.cache_mb = max(0, cache_mb)
        self.stall_timeout = stall_timeout
        self._known: weakref.WeakKeyDictionary[ServerProcess, KnownPrompts] = weakref.WeakKeyDictionary()
        self._known_lock = threading.Lock()
        self.memory_bytes = memory_bytes or psutil.virtual_memory().total
        self.servers = Servers(binary, run_dir, load_timeout=load_timeout, max_loaded=max_loaded)
        self._version: str | None = None
        self._version_failure: tuple[float, EngineStatus] | None = None  # (time.monotonic(), status)
        self._version_lock = threading.Lock()  # one `--version` at a time; the others wait for it

    # -- catalogue -------------------------------------------------------------------------
    def list_models(self) -> list[ModelInfo]:
        running = self.servers.running()
        models = []
        for source, path in self.files.files():
            model_id = path.name.removesuffix(".gguf")
            server = running.get(model_id)
            plan = server.plan if server else self._plan_or_none(model_id, path, GenerationOptions())
            models.append(
                self.files.describe(
                    self.name,
                    source,
                    path,
                    load_context=self.context,
                    problem=self.servers.failure(model_id),
                    loaded_context=plan.context * plan.slots if server and plan else None,
                    memory_bytes=_rss(server) if server else 0,
                    slots=plan.slots if plan else 0,
                    slot_context=plan.context if plan else 0,
                    prompt_cache_mb=plan.cache_mb if plan else 0,
                )
            )
        return models

    def is_loaded(self, model_id: str) -> bool:
        return model_id in self.servers.running()

    def status(self) -> EngineStatus:
        if not self.binary.is_file():
            return EngineStatus(self.name, False, detail=f"llama-server not found at {self.binary}")
        with self._version_lock:
            if self._version is None:
                failed = self._version_failure
                if failed and time.monotonic() < failed[0] + VERSION_RETRY:
                    return failed[1]
                try:
                    self._version = self._read_version()
                except (OSError, subprocess.TimeoutExpired) as exc:
                    status = EngineStatus(self.name, False, detail=f"{self.binary}: {exc}")
                    self._version_failure = (time.monotonic(), status)
                    return status
        return EngineStatus(self.name, True, version=self._version)

    def _read_version(self) -> str:
        done = subprocess.run(
            [str(self.binary), "--version"],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT,
            env={"LD_LIBRARY_PATH": str(self.binary.parent)},
        )
        line = next((ln for ln in done.stdout.splitlines() + done.stderr.splitlines() if "version" in ln), "")
        return line.removeprefix("version:").strip()

    def processes(self, model_id: str = "") -> list:
        server = self.servers.running().get(model_id)
        try:
            return [psutil.Process(server.pid)] if server else []
        except psutil.Error:
            return []

    def claim(self, model_id: str, options: GenerationOptions) -> Claim:
        path = self.files.path_of(model_id)
        plan = self._plan_or_none(model_id, path, options) if path else None
        return Claim(f"{self.name}/{model_id}", seats=plan.slots if plan else 1, local=True)

    def unload(self, model_id: str) -> bool:
        """Stop the model's server; False when it was not running or is answering."""
        return self.servers.stop(model_id)

    def close(self) -> None:
        self.servers.close()

    # -- the plan of a model's server --------------------------------------------------------
    def _known_prompts(self, server: ServerProcess) -> KnownPrompts:
        """Per server: a server started again holds none of the old one's prompts."""
        with self._known_lock:
            return self._known.setdefault(server, KnownPrompts())

    def plan(self, model_id: str, options: GenerationOptions) -> ServerPlan:
        path = self.files.path_of(model_id)
        if path is None:
            raise EngineError(MODEL_NOT_FOUND, model_id)
        problem = problem_with(path)
        if problem:
            raise EngineError(MODEL_UNREADABLE, problem)
        plan = self._plan_or_none(model_id, path, options)
        if plan is None:
            raise EngineError(MODEL_UNREADABLE, f"unreadable GGUF header: {path}")
        return plan

    def _plan_or_none(self, model_id: str, path: Path, options: GenerationOptions) -> ServerPlan | None:
        """The admin's context and threads (else the configuration's), and as many slots as
        LLAMA_SLOTS asks while weights, the slots' caches and the prompt cache fit in
        MEMORY_SHARE of this machine's memory (at least one)."""
        try:
            facts = read_facts(path)
        except (GGUFError, OSError):
            return None
        context = options.context or self.context
        cache_mb = self.cache_mb if options.cache_prompt else 0
        room = MEMORY_SHARE * self.memory_bytes - path.stat().st_size - cache_mb * 2**20
        per_slot = max(1, facts.kv_cache_bytes(context))
        slots = max(1, min(self.slots, int(room // per_slot)))
        return ServerPlan(
            model_id=model_id,
            model_path=str(path),
            threads=options.threads or self.threads,
            slots=slots,
            context=context,
            cache_mb=cache_mb,
            slots_wanted=self.slots,
        )

    # -- generation ------------------------------------------------------------------------
    def stream_chat(
        self,
        model_id: str,
        messages: list[ChatMessage],
        options: GenerationOptions,
        cancel: threading.Event,
    ) -> Iterator[Chunk]:
        started = time.perf_counter()
        if not self.binary.is_file():
            raise EngineError(ENGINE_UNAVAILABLE, f"llama-server not found at {self.binary}")
        plan = self.plan(model_id, options)
        for attempt in (1, 2):
            loading = not self.servers.ready(plan)
            if loading:
                yield Phase("loading")
            try:
                server = self.servers.acquire(plan, cancel)
            except ServerFailed as exc:
                if exc.timeout:
                    raise EngineError(LOAD_TIMEOUT, exc.detail, seconds=int(exc.timeout)) from exc
                raise EngineError(MODEL_UNREADABLE if loading else ENGINE_CRASHED, exc.detail) from exc
            if server is None:  # stopped while it loaded
                yield Final(GenerationStats(finish_reason="cancelled", engine=self.name))
                return
            written = False
            try:
                load_seconds = time.perf_counter() - started if loading else 0.0
                for chunk in self._generate(server, messages, options, cancel, started, load_seconds):
                    written = written or not isinstance(chunk, Phase)
                    yield chunk
                return
            except EngineError as exc:
                # A server that died an instant ago may still be taken for alive: its sockets
                # close before the kernel reports its end. Nothing written yet: wait for that
                # end, and the next attempt gets the server the watcher starts again.
                if attempt == 2 or written or exc.code != ENGINE_CRASHED or not _died(server):
                    raise
                log.info("llama-server %d had just died: the answer waits for the next one", server.pid)
            finally:
                self.servers.release(server)

    def _generate(self, server: ServerProcess, messages, options, cancel, started, load_seconds):
        plan = server.plan
        chat = _chat_format(server)
        rendered: dict[int, tuple[list[int], bool, str]] = {}  # the prompts tried, by message count

        known = self._known_prompts(server)

        def count_tokens(kept: list[ChatMessage]) -> int:
            prompt = chat.render(kept, close_thinking=options.think is False)
            tokens = known.tokens(
                prompt.text,
                prompt.add_bos,
                lambda text, bos: _tokenize(server, text, bos),
                lambda tokens, text: _reads_back(server, tokens, text),
            )
            rendered[len(kept)] = (tokens, prompt.opened, prompt.text)
            return len(rendered[len(kept)][0])

        window = fit_to_window(
            messages, count_tokens, context_window=plan.context, answer_room=options.max_tokens
        )
        if window.dropped:
            yield Trimmed(window.dropped)
        tokens, opened, prompt_text = rendered[len(window.messages)]
        stats = GenerationStats(
            prompt_tokens=len(tokens),
            load_seconds=load_seconds,
            dropped_messages=window.dropped,
            threads=plan.threads,
            context_window=plan.context,
            finish_reason="length",
            engine=self.name,
        )
        yield Phase("prompt")
        body = {
            "prompt": tokens,
            "n_predict": window.answer_room,
            "temperature": options.temperature,
            "top_k": options.top_k,
            "top_p": options.top_p,
            "repeat_penalty": options.repeat_penalty,
            "stream": True,
            "cache_prompt": options.cache_prompt,
            "return_progress": True,
            "stop": list(chat.stops),
        }
        if options.seed is not None:
            body["seed"] = options.seed
        if options.json_schema:
            body["json_schema"] = json.loads(options.json_schema)
        splitter = ThinkSplitter(starts_thinking=opened)
        stopper = StopMatcher(chat.stops)
        call = _CompletionCall(server, body, cancel, self.stall_timeout)
        first_at = last_at = 0.0
        tokens_before_text = 0
        read = 0  # prompt tokens read so far, as the server reported
        generated: list[int] = []  # the answer's tokens, and its text as the model wrote it
        written: list[str] = []
        try:
            for part in call.parts():
                now = time.perf_counter()
                if cancel.is_set():
                    break
                progress = part.get("prompt_progress")
                if progress:
                    stats.cached_tokens = progress.get("cache", 0)
                    done = progress.get("processed", 0) - stats.cached_tokens
                    if done > read:
                        yield Progress(done - read)
                        read = done
                    continue
                new = (part.get("tokens") or []) if not part.get("stop") else []
                stats.thinking_tokens += splitter.thinking * len(new)
                stats.completion_tokens += len(new)
                generated += new
                written.append(part.get("content", ""))
                if new:
                    last_at = now
                for piece in splitter.feed(stopper.feed(part.get("content", ""))):
                    if not first_at:
                        first_at = now
                        tokens_before_text = max(0, stats.completion_tokens - 1)
                    yield from note_first(piece, stats, now - started)
                    yield piece
                if part.get("stop") or stopper.stopped:
                    _take_final_figures(stats, part)
                    break
        finally:
            call.close()
        if cancel.is_set():
            stats.finish_reason = "cancelled"
        now = time.perf_counter()
        for piece in splitter.feed(stopper.flush()) + splitter.flush():
            yield from note_first(piece, stats, now - started)
            yield piece
        stats.total_seconds = now - started
        stats.first_token_seconds = stats.first_token_seconds or stats.total_seconds
        timed_tokens = stats.completion_tokens - tokens_before_text
        if timed_tokens > 1 and last_at > first_at:
            stats.tokens_per_second = (timed_tokens - 1) / (last_at - first_at)
        if options.cache_prompt and not chat.thinks and stats.finish_reason in ("stop", "length"):
            # Before the answer ends, not beside it: the scheduler hands the cores to another
            # model's batch at the end, and two separate decodes on the same cores collapse
            # (the mixed two-model load fell to 0.56 of one model with this in a thread); a
            # request sent the instant the answer ended would also have waited for it.
            turn = _Turn(window.messages, prompt_text, tokens, "".join(written), generated)
            _prepare_next_turn(server, chat, turn, known)
        yield Final(stats)


NEXT_QUESTION = "§§§"  # stands for the next question, to find what the template writes before it


@dataclass(frozen=True)
class _Turn:
    """An answer just written, and the prompt it answered, as text and as the slot's tokens."""

    messages: list[ChatMessage]
    prompt: str
    prompt_tokens: list[int]
    answer: str  # as the model wrote it, before the stops and the think tags were taken out
    answer_tokens: list[int]


def _prepare_next_turn(server: ServerProcess, chat: ChatFormat, turn: _Turn, known: KnownPrompts) -> None:
    """Read, now, what the template writes between this answer and the next question (the end
    of the answer's turn, the start of the next user turn), into the slot that holds the
    conversation, and remember the slot's tokens under their text: the next question then only
    has itself to be read. Skipped when the template does not write the answer back as it was
    (it may drop or change past turns); the tokens are remembered only when they read back as
    exactly that text."""
    try:
        following = chat.render(
            [*turn.messages, ChatMessage("assistant", turn.answer), ChatMessage("user", NEXT_QUESTION)]
        )
        before = turn.prompt + turn.answer
        if not following.text.startswith(before) or NEXT_QUESTION not in following.text[len(before) :]:
            return
        between = following.text[len(before) : following.text.index(NEXT_QUESTION, len(before))]
        more = _tokenize(server, between, add_bos=False) if between else []
        answer_tokens = _tokens_of_answer(server, turn.answer_tokens, turn.answer)
        tokens = turn.prompt_tokens + (turn.answer_tokens if answer_tokens is None else answer_tokens) + more
        if more:
            server.call("POST", "/completion", {"prompt": tokens, "n_predict": 0, "cache_prompt": True}, 10)
        # Tokenised alone, a text may get what it would not in the whole prompt (a SentencePiece
        # vocabulary's leading space): remembered only when every piece reads back as its text.
        if answer_tokens is not None and _reads_back(server, more, between):
            known.remember(before + between, tokens)
    except Exception:  # an optimisation only: the next turn reads it then
        log.debug("preparing the next turn failed", exc_info=True)


STOP_TOKENS_AT_MOST = 8  # a stop word's tokens, generated but cut from the answer's text


def _tokens_of_answer(server: ServerProcess, generated: list[int], answer: str) -> list[int] | None:
    """The answer's tokens as generated that read back as exactly its text: all of them, or
    all but a stop word's at the end (the server cuts the word from the text, not from the
    tokens); None when no such prefix reads back as the text."""
    for cut in range(min(STOP_TOKENS_AT_MOST, len(generated)) + 1):
        kept = generated[: len(generated) - cut]
        if _reads_back(server, kept, answer):
            return kept
    return None


def _reads_back(server: ServerProcess, tokens: list[int], text: str) -> bool:
    """Whether these tokens are exactly this text (special tokens written as their text)."""
    if not tokens:
        return not text
    status, body = server.call("POST", "/detokenize", {"tokens": tokens}, 2)
    return status == 200 and body.get("content") == text


def _take_final_figures(stats: GenerationStats, part: dict) -> None:
    timings = part.get("timings") or {}
    stats.engine_timings = timings
    stats.finish_reason = STOP_REASONS.get(part.get("stop_type", ""), "stop")
    stats.cached_tokens = int(timings.get("cache_n", stats.cached_tokens) or 0)
    stats.prompt_tokens = int(timings.get("prompt_n", 0) or 0) + stats.cached_tokens or stats.prompt_tokens
    stats.completion_tokens = int(timings.get("predicted_n", stats.completion_tokens) or 0)


def _rss(server: ServerProcess) -> int:
    try:
        return psutil.Process(server.pid).memory_info().rss
    except psutil.Error:
        return 0


def _chat_format(server: ServerProcess) -> ChatFormat:
    """The model's template (from its GGUF header, as the in-process engine reads it), with
    the special tokens' text as the server's vocabulary has them."""
    cached = server.props.get("_chat_format")
    if cached is None:
        facts = read_facts(server.plan.model_path)
        cached = ChatFormat(
            facts.chat_template, bos=server.props.get("bos_token", ""), eos=server.props.get("eos_token", "")
        )
        try:
            cached.check()
        except Exception as exc:  # a template that does not compile: the file's fault
            raise EngineError(MODEL_UNREADABLE, f"chat template of {server.plan.model_path}: {exc}") from exc
        server.props["_chat_format"] = cached
    return cached


def _died(server: ServerProcess, wait: float = 1.0) -> bool:
    try:
        server.popen.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        return False
    return True


def _tokenize(server: ServerProcess, text: str, add_bos: bool) -> list[int]:
    try:
        status, body = server.call(
            "POST", "/tokenize", {"content": text, "add_special": add_bos, "parse_special": True}
        )
    except OSError as exc:
        raise EngineError(ENGINE_CRASHED, f"llama-server: {exc}") from exc
    if status != 200 or not isinstance(body.get("tokens"), list):
        raise EngineError(GENERATION_FAILED, f"llama-server /tokenize answered {status}: {body}")
    return body["tokens"]


class _CompletionCall:
    """One streamed /completion request, read in the caller's thread (no thread hop per token).
    A guard thread watches Stop and silence: it shuts the socket, which ends the read at once
    and is how the server learns to stop."""

    def __init__(self, server: ServerProcess, body: dict, cancel: threading.Event, stall_timeout: float):
        self.server = server
        self._body = body
        self._cancel = cancel
        self._stall_timeout = stall_timeout
        self._connection = http.client.HTTPConnection(LOOPBACK, server.port, timeout=None)
        self._last_byte = time.monotonic()
        self._over = threading.Event()
        self.stalled = False
        threading.Thread(target=self._guard, daemon=True, name="llama-server-guard").start()

    def _guard(self) -> None:
        while not self._over.is_set():
            if self._cancel.wait(TICK):
                self._shut()
                return
            if time.monotonic() - self._last_byte > self._stall_timeout:
                self.stalled = True
                self._shut()
                return

    def parts(self) -> Iterator[dict]:
        """The stream's JSON parts until its end; raises EngineError when it breaks or stalls."""
        headers = {
            "Authorization": f"Bearer {self.server.key}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        }
        try:
            self._connection.request("POST", "/completion", json.dumps(self._body), headers)
            response = self._connection.getresponse()
            if response.status != 200:
                raise _http_error(response.status, response.read(ERROR_READ_BYTES))
            while True:
                line = response.readline(ENGINE_LINE_MAX_BYTES + 1)
                if not line:
                    break
                if len(line) > ENGINE_LINE_MAX_BYTES:  # not held whole: the server is not itself
                    detail = f"llama-server: a line past {ENGINE_LINE_MAX_BYTES} bytes"
                    raise EngineError(ENGINE_REPLY_TOO_LARGE, detail)
                self._last_byte = time.monotonic()  # pings count: the server is alive
                if line.startswith(b"data: "):
                    part = json.loads(line[6:])
                    if isinstance(part, dict) and "error" in part:
                        raise EngineError(GENERATION_FAILED, f"llama-server: {part['error']}")
                    yield part
                    if part.get("stop"):
                        return
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if not self._cancel.is_set() and not self.stalled:
                raise EngineError(ENGINE_CRASHED, f"llama-server: {exc!r}") from exc
        if self.stalled:
            raise EngineError(STALLED, "llama-server went quiet", seconds=int(self._stall_timeout))
        if not self._cancel.is_set():
            raise EngineError(ENGINE_CRASHED, "llama-server closed the stream before its end")

    def _shut(self) -> None:
        sock = self._connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed

    def close(self) -> None:
        self._over.set()
        self._shut()
        self._connection.close()


def _http_error(status: int, raw: bytes) -> EngineError:
    try:
        error = json.loads(raw).get("error", {})
    except (ValueError, AttributeError):
        error = {"message": raw[:300].decode("utf-8", "replace")}
    detail = f"llama-server answered {status}: {error.get('message', error)}"
    if error.get("type") == "exceed_context_size_error":
        return EngineError(PROMPT_TOO_LONG, detail)
    return EngineError(GENERATION_FAILED, detail)
