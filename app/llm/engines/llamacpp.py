"""The in-process engine: GGUF models run inside this process through llama-cpp-python.

The fallback when llama.cpp's own server (llamaserver.py) is not installed, or when the admin
chooses it (LLAMA_ENGINE=inprocess): one answer at a time per model, no batching.
"""

from __future__ import annotations

import codecs
import functools
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from app.llm.context import fit_to_window
from app.llm.engines.gguf_files import ModelFiles, file_identity, machine_cores, problem_with
from app.llm.prompting import ChatFormat
from app.llm.stops import StopMatcher
from app.llm.thinking import ThinkSplitter, note_first
from app.llm.types import (
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
    Progress,
    Trimmed,
)

log = logging.getLogger(__name__)

ENGINE_NAME = "llama.cpp"
__all__ = ["LlamaCppEngine", "machine_cores"]


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


class _LoadedModel:
    """A llama.cpp model and the lock that keeps it to one thread at a time."""

    def __init__(self, llama, chat: ChatFormat, is_end, context: int, threads: int) -> None:
        self.llama = llama
        self.chat = chat
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
        self.files = ModelFiles(models_dir)
        self.threads = threads or machine_cores()
        self.context = context
        self.max_loaded = max_loaded
        self._loaded: OrderedDict[str, _LoadedModel] = OrderedDict()
        self._load_errors: dict[tuple[str, int, int], str] = {}  # by file version
        self._lock = threading.Lock()  # guards _loaded and _load_errors

    # -- catalogue -------------------------------------------------------------------------
    def list_models(self) -> list[ModelInfo]:
        return [self._describe(source, path) for source, path in self.files.files()]

    def _describe(self, source: str, path: Path) -> ModelInfo:
        loaded = self._loaded.get(path.name.removesuffix(".gguf"))
        return self.files.describe(
            self.name,
            source,
            path,
            load_context=self.context,
            problem=self._load_errors.get(file_identity(path), ""),
            loaded_context=loaded.context if loaded else None,
        )

    def status(self) -> EngineStatus:
        try:
            import llama_cpp
        except ImportError as exc:
            return EngineStatus(self.name, False, detail=str(exc))
        return EngineStatus(self.name, True, version=llama_cpp.__version__)

    def processes(self, model_id: str = "") -> list:
        import psutil

        return [psutil.Process()]  # in this very process

    def claim(self, model_id: str, options: GenerationOptions) -> Claim:
        # One Llama object decodes one answer at a time, on this machine's cores.
        return Claim(f"{self.name}/{model_id}", seats=1, local=True)

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
        close_thinking = options.think is False

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
        stopper = StopMatcher(model.chat.stops)
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
        stats.cached_tokens = cached
        yield Progress(len(prompt) - cached)  # read in the first step below
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
        """The prompt's tokens, and whether it ends inside an opened <think> block."""
        prompt = model.chat.render(messages, close_thinking)
        tokens = model.llama.tokenize(prompt.text.encode("utf-8"), add_bos=prompt.add_bos, special=True)
        return tokens, prompt.opened

    # -- loading ---------------------------------------------------------------------------
    def _load(self, model_id: str, context: int, threads: int) -> _LoadedModel:
        with self._lock:
            if model_id in self._loaded:
                return self._loaded[model_id]
            path = self.files.path_of(model_id)
            if path is None:
                raise EngineError(MODEL_NOT_FOUND, model_id)
            problem = problem_with(path)
            if problem:
                raise EngineError(MODEL_UNREADABLE, problem)
            try:
                import llama_cpp
            except ImportError as exc:
                raise EngineError(ENGINE_UNAVAILABLE, str(exc)) from exc
            identity = file_identity(path)
            llama = None
            try:
                llama = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=context,
                    n_threads=threads,
                    n_threads_batch=threads,
                    verbose=False,
                )
                chat = ChatFormat(
                    llama.metadata.get("tokenizer.chat_template", ""),
                    bos=_token_text(llama, llama.token_bos()),
                    eos=_token_text(llama, llama.token_eos()),
                )
                chat.check()
            except Exception as exc:  # a bad file or a bad template inside it: tell the admin
                if llama is not None:  # loaded, but its template is unusable: free its memory
                    llama.close()
                message = f"llama.cpp could not load {path}: {exc}"
                # Kept per file version: the same file is not retried, a replaced one is.
                self._load_errors[identity] = message
                log.error(message)
                raise EngineError(MODEL_UNREADABLE, message) from exc
            vocab = llama._model.vocab
            loaded = _LoadedModel(
                llama, chat, lambda token: llama_cpp.llama_vocab_is_eog(vocab, token), context, threads
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


def _token_text(llama, token: int) -> str:
    return llama._model.token_get_text(token) if token != -1 else ""
