"""Dense vectors of passages and questions, for retrieval that finds a passage saying the same
thing in other words (full text finds only shared words). A GGUF embedding model runs through
llama.cpp in this process: a small encoder (multilingual-e5-small: 118M parameters, 74 MB) embeds
a 200-token passage in about a tenth of a second on one core, a question in about 10 ms: not worth
a server of its own."""

from __future__ import annotations

import atexit
import threading
import unicodedata
from pathlib import Path

import numpy as np

from app.llm.engines.gguf_files import file_identity, problem_with

# What each model family puts before a text, by purpose: e5 was trained with these prefixes and
# ranks worse without them. Matched against the model's name in its GGUF header.
PREFIXES = {
    "e5": {"query": "query: ", "passage": "passage: "},
    "nomic-embed": {"query": "search_query: ", "passage": "search_document: "},
    "bge-small-en": {"query": "Represent this sentence for searching relevant passages: ", "passage": ""},
}
# Tokens read of a text, the rest cut: the app's passages are ~200 tokens. Not the model's 512:
# llama.cpp keeps an output buffer of the vocabulary's size for every token read (multilingual-e5's
# 250,000 pieces: 1 MB a token, held at its largest), so 256 tokens hold ~460 MB in all, 512 ~720.
CONTEXT = 256


class Embedder:
    """One embedding model, loaded once per process; thread-safe (llama.cpp's context is not:
    one text is read at a time)."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import llama_cpp

        self.path = path
        self._llama = llama_cpp.Llama(
            model_path=str(path),
            embedding=True,
            n_ctx=CONTEXT,
            n_batch=CONTEXT,
            n_ubatch=CONTEXT,  # an encoder reads a whole text in one micro-batch
            n_threads=threads,
            n_threads_batch=threads,
            flash_attn=True,  # 12 % less CPU per passage, the same vectors (cosine 0.99997)
            verbose=False,
        )
        self._context = min(CONTEXT, self._llama.n_ctx())
        # llama.cpp's context reads one text at a time; a question goes before the passages of
        # a document being indexed that wait with it.
        self._turn = threading.Condition()
        self._reading = False
        self._questions_waiting = 0
        self.name = self._llama.metadata.get("general.name") or path.stem
        self.dimensions = self._llama.n_embd()
        family = next((key for key in PREFIXES if key in self.name.lower()), None)
        self._prefixes = PREFIXES.get(family, {"query": "", "passage": ""})

    def close(self) -> None:
        with self._turn:
            self._turn.wait_for(lambda: not self._reading)
            self._llama.close()

    def _wait_turn(self, question: bool) -> None:
        with self._turn:
            self._questions_waiting += question
            self._turn.wait_for(lambda: not self._reading and (question or not self._questions_waiting))
            self._questions_waiting -= question
            self._reading = True

    def _end_turn(self) -> None:
        with self._turn:
            self._reading = False
            self._turn.notify_all()

    def _tokens(self, text: str) -> list[int]:
        # NFKC: what SentencePiece's nmt_nfkc normaliser does before tokenizing (a non-breaking
        # space, common in French typography, becomes a space; full-width letters and ligatures
        # plain ones); the GGUF file carries no normalisation table of its own.
        tokens = self._llama.tokenize(unicodedata.normalize("NFKC", text).encode(), add_bos=True)
        if len(tokens) > self._context:  # keep the end-of-text token the model was trained with
            tokens = tokens[: self._context - 1] + tokens[-1:]
        return tokens

    def embed(self, texts: list[str], purpose: str = "passage") -> np.ndarray:
        """(len(texts), dimensions) float32 rows of length 1, so a dot product is the cosine.
        purpose: "query" for a question, "passage" for a text searched."""
        import llama_cpp

        prefix = self._prefixes[purpose]
        vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        # The Llama object's own context and batch, as engines/llamacpp.py uses its context:
        # Llama.embed() calls decode(), on which llama.cpp logs an error for every batch of an
        # encoder-only model before falling back to encode(). One text per pass: several texts in
        # one batch attend over all their tokens (masked), which cost 40 % more CPU per 200-token
        # passage than one at a time; and a turn per text, so that a question waits for one
        # passage of a document being indexed, not for the whole document.
        context, batch = self._llama._ctx, self._llama._batch
        for row, text in enumerate(texts):
            self._wait_turn(question=purpose == "query")
            try:
                batch.add_sequence(self._tokens(prefix + text), 0, True)
                try:
                    context.encode(batch)
                finally:
                    batch.reset()
                pooled = llama_cpp.llama_get_embeddings_seq(context.ctx, 0)
                vectors[row] = np.ctypeslib.as_array(pooled, shape=(self.dimensions,))
            finally:
                self._end_turn()
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


# Per file version (a replaced file is loaded again); None: llama.cpp could not load that version,
# remembered so that a broken file is not loaded again for every question.
_embedders: dict[tuple[str, int, int], Embedder | None] = {}
_loading = threading.Lock()


@atexit.register
def _close_all() -> None:
    # Before the interpreter tears down llama_cpp's module, which Llama's own finaliser needs.
    for loaded in _embedders.values():
        if loaded is not None:
            loaded.close()


def embedder(config) -> Embedder | None:
    """The configured embedding model, loaded on first use; None when there is none (an empty
    EMBEDDING_MODEL, or a file that is missing or not a model): retrieval is then full text only."""
    setting = config.get("EMBEDDING_MODEL")
    if not setting:
        return None
    path = Path(setting).expanduser()
    with _loading:
        if problem_with(path):
            return None
        version = file_identity(path)
        if version not in _embedders:
            try:
                # One thread: documents are indexed beside answers, which keep the other cores.
                _embedders[version] = Embedder(path, threads=1)
            except ValueError:
                _embedders[version] = None
        return _embedders[version]
