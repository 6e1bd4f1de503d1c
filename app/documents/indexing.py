"""Indexing in the background: a document's text extracted (in a child process at the lowest
priority), cut into passages, embedded when an embedding model exists, and stored with the
database's full-text index. One document at a time, at the lowest CPU priority, so answers
being written keep the cores; a restart takes up what was left unfinished."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable

import numpy as np
import sqlalchemy as sa

from app.documents.chunking import cut
from app.documents.extract import DocumentError, extract_isolated
from app.documents.store import path_of
from app.documents.words import estimate_tokens
from app.extensions import db
from app.models import Chunk, Document, utcnow

log = logging.getLogger(__name__)

EMBED_BATCH = 16
EMBED_STEP = 4  # passages embedded between two looks at the answers being written
YIELD_SECONDS = 20  # the longest the embedding waits for answers before going on
SWEEP_SECONDS = 3600
FINISHED = ("ready", "error")


def embedder_for(app):
    """The embedding model of this server, or None (full text alone)."""
    try:
        from app.llm.embeddings import embedder
    except ImportError:  # pragma: no cover - the module ships with the app
        return None
    return embedder(app.config)


def index_document(document_id: int, embed=None, on_progress: Callable[[], None] | None = None) -> None:
    """Index one document now (in an app context); its state says how it went."""
    document = db.session.get(Document, document_id)
    if document is None or document.state in FINISHED:
        return
    document.state = "indexing"
    db.session.commit()
    started = time.perf_counter()
    try:
        extracted = extract_isolated(
            path_of(document), document.filename, document_max_pages(), timeout=extraction_timeout()
        )
        pieces = cut(extracted.sections)
        if not pieces:
            raise DocumentError("no_text")
    except DocumentError as error:
        _failed(document_id, error.code, error.values)
        return
    except Exception:
        log.exception("document %s could not be indexed", document_id)
        _failed(document_id, "corrupt", {})
        return
    document = db.session.get(Document, document_id)
    if document is None:  # deleted meanwhile
        return
    document.pages = extracted.pages
    document.pages_done = extracted.pages
    document.characters = sum(len(p.text) for p in pieces)
    document.tokens = estimate_tokens("\n".join(s.text for s in extracted.sections))
    db.session.commit()
    try:
        stored = _store_passages(document_id, pieces, embed, on_progress)
    except Stopped:  # the server stops: indexed again from the start at the next one
        db.session.rollback()
        db.session.execute(sa.delete(Chunk).where(Chunk.document_id == document_id))
        db.session.execute(
            sa.update(Document).where(Document.id == document_id).values(state="waiting", chunks=0)
        )
        db.session.commit()
        return
    except Exception:
        # Nothing half-stored: a document is searched whole or not at all.
        log.exception("the passages of document %s could not be stored", document_id)
        db.session.rollback()
        db.session.execute(sa.delete(Chunk).where(Chunk.document_id == document_id))
        _failed(document_id, "corrupt", {})
        return
    if stored is None:
        return  # deleted meanwhile
    db.session.execute(
        sa.update(Document)
        .where(Document.id == document_id)
        .values(
            state="ready",
            chunks=stored,
            embedded=embed is not None,
            index_seconds=time.perf_counter() - started,
            indexed_at=utcnow(),
        )
    )
    db.session.commit()


class Stopped(Exception):
    """The indexer was closed while it stored a document's passages (`on_progress` raises it)."""


def _store_passages(document_id: int, pieces, embed, on_progress) -> int | None:
    """The passages stored (and embedded) in batches, progress told after each; how many, or
    None when the document was deleted meanwhile."""
    stored = 0
    for start in range(0, len(pieces), EMBED_BATCH):
        batch = pieces[start : start + EMBED_BATCH]
        vectors = _embedded(embed, [p.text for p in batch]) if embed else None
        rows = [
            {
                "document_id": document_id,
                "position": start + i,
                "page": piece.page,
                "heading": piece.heading,
                "text": piece.text,
                "tokens": piece.tokens,
                "vector": np.asarray(vectors[i], dtype=np.float32).tobytes() if vectors is not None else None,
            }
            for i, piece in enumerate(batch)
        ]
        if db.session.get(Document, document_id) is None:
            db.session.rollback()
            return None  # deleted meanwhile: its passages would have nothing to belong to
        db.session.execute(sa.insert(Chunk), rows)
        stored += len(rows)
        db.session.execute(sa.update(Document).where(Document.id == document_id).values(chunks=stored))
        db.session.commit()
        if on_progress:
            on_progress()
    return stored


def _answers_being_written() -> bool:
    """Answers running or queued on an engine; not the places of questions still waiting for
    their documents (one may be waiting for this very document)."""
    from app.llm import services as llm

    return any(running or waiting for running, waiting in llm().scheduler.occupancy().values())


def _embedded(embed, texts: list[str]) -> list:
    """`embed(texts)`, a few at a time, each step after the answers being written (for at most
    YIELD_SECONDS). The embedding runs in this process, and its thread's nice 19 does not hold
    it back from llama-server: where the kernel groups processes by session (autogroup, on by
    default in Debian's kernels) sessions share the cores equally whatever their processes'
    nice, and llama-server has a session of its own. Measured by
    benchmarks/documents_first_token.py: the niced indexing took 12 to 33 % of a core while a
    chat's first token was awaited."""
    vectors: list = []
    for start in range(0, len(texts), EMBED_STEP):
        deadline = time.monotonic() + YIELD_SECONDS
        while _answers_being_written() and time.monotonic() < deadline:
            time.sleep(0.1)
        vectors.extend(embed(texts[start : start + EMBED_STEP]))
    return vectors


def _failed(document_id: int, code: str, values: dict) -> None:
    db.session.rollback()
    db.session.execute(
        sa.update(Document)
        .where(Document.id == document_id)
        .values(state="error", error_code=code, error_values={k: v for k, v in values.items()})
    )
    db.session.commit()


def document_max_pages() -> int:
    from flask import current_app

    return current_app.config["MAX_DOCUMENT_PAGES"]


def extraction_timeout() -> float:
    from flask import current_app

    # Wall-clock: at nice 19 the child waits behind every answer being written, and a 500-page
    # PDF takes ~7 CPU seconds; a generous bound for a parser that never ends.
    return float(current_app.config.get("DOCUMENT_EXTRACTION_SECONDS", 1800))


def _passage_embedding(model):
    """The function that embeds passages with `model`, or None without one."""
    if model is None:
        return None
    return lambda texts: model.embed(texts, "passage")


class Indexer:
    """The one background worker of a server's documents."""

    def __init__(self, app) -> None:
        self.app = app
        self._closed = threading.Event()
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.changed = threading.Condition()
        self.current: int | None = None

    def add(self, document_id: int) -> None:
        if self._closed.is_set():
            return  # the next start takes it up (resume)
        self._queue.put(document_id)
        self._ensure_thread()

    def close(self) -> None:
        """Stop indexing (the server stops; a test's app is done): the document under way
        stops after the passages being embedded and waits for the next start. Embedding a long
        document left running would take the cores from whatever runs next."""
        self._closed.set()
        self._queue.put(None)

    def resume(self) -> None:
        """Documents left waiting or half-indexed by a stopped server: indexed again."""
        with self.app.app_context():
            unfinished = list(
                db.session.scalars(
                    sa.select(Document.id)
                    .where(Document.state.in_(("waiting", "indexing")))
                    .order_by(Document.id)
                )
            )
            if unfinished:
                db.session.execute(sa.delete(Chunk).where(Chunk.document_id.in_(unfinished)))
                db.session.execute(
                    sa.update(Document).where(Document.id.in_(unfinished)).values(state="waiting", chunks=0)
                )
                db.session.commit()
        for document_id in unfinished:
            self.add(document_id)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="document-indexer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:  # this thread (and the embedding threads it starts) at the lowest priority
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (OSError, AttributeError):
            pass
        embed = None
        while True:
            try:
                document_id = self._queue.get(timeout=SWEEP_SECONDS)
            except queue.Empty:  # a quiet hour: files of deleted documents, unsent attachments
                self._sweep()
                continue
            if document_id is None or self._closed.is_set():
                return
            self.current = document_id
            try:
                with self.app.app_context():
                    if embed is None:
                        embed = _passage_embedding(embedder_for(self.app)) or False
                    index_document(document_id, embed or None, on_progress=self._progressed)
                    db.session.remove()
            except Exception:
                log.exception("indexing document %s failed", document_id)
            finally:
                self.current = None
                self._notify()

    def _sweep(self) -> None:
        from app.documents.store import sweep

        try:
            with self.app.app_context():
                sweep()
                db.session.remove()
        except Exception:
            log.exception("the documents' sweep failed")

    def _progressed(self) -> None:
        if self._closed.is_set():
            raise Stopped()
        self._notify()

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def wait(self, timeout: float) -> None:
        """Until any document's indexing moves on, or `timeout`."""
        with self.changed:
            self.changed.wait(timeout)


def indexer(app=None) -> Indexer:
    from flask import current_app

    app = app or current_app._get_current_object()
    return app.extensions["documents"]


def states(document_ids: list[int]) -> dict[int, tuple[str, int, int | None]]:
    """{id: (state, chunks, pages)} read afresh (a connection of its own: the indexer commits
    on another)."""
    if not document_ids:
        return {}
    query = sa.select(Document.id, Document.state, Document.chunks, Document.pages).where(
        Document.id.in_(document_ids)
    )
    with db.engine.connect() as connection:
        return {row.id: (row.state, row.chunks, row.pages) for row in connection.execute(query)}


def wait_until_indexed(
    document_ids: list[int], report: Callable[[int, int], None], cancelled: Callable[[], bool], timeout: float
) -> dict[int, str]:
    """Wait for the documents' indexing to end (ready or error), telling `report(done, total)`
    as it moves; their final states. Stops waiting when `cancelled()` or after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        found = states(document_ids)
        done = sum(1 for state, _, _ in found.values() if state in FINISHED) + len(
            set(document_ids) - set(found)
        )
        if (done, len(document_ids)) != last:
            last = (done, len(document_ids))
            report(done, len(document_ids))
        if done >= len(document_ids) or cancelled() or time.monotonic() > deadline:
            return {i: found.get(i, ("gone", 0, None))[0] for i in document_ids}
        indexer().wait(0.5)
