"""Finding the passages that answer a question, among the documents its reader may read: the
database's full-text index, and dense vectors when an embedding model exists, ranked together
by reciprocal rank fusion (each list's rank counts, not its incomparable scores)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from app.documents.words import terms
from app.extensions import db
from app.models import Chunk, Document

CANDIDATES = 50  # of each ranking, fused
# Reciprocal rank fusion: score = Σ weight / (RRF_K + rank). Cormack et al.'s k = 60 with equal
# weights found 79 of the shipped set's 91 passages among the first 5 (0.87): for the questions
# sharing no word with their passage, full text ranks unrelated passages high. k = 20 with the
# vectors counted twice finds 85 (0.93). Tuned on one half of the questions and tried on the
# other, both ways, the best setting found 84 of the 91 held-out passages (0.92) where the
# default found 79. `python -m benchmarks.retrieval` prints the recall.
RRF_K = 20
VECTOR_WEIGHT = 2.0
# The cosine below which a passage sharing no word with the question is taken as unrelated, per
# embedding model family: a vector search always returns its nearest passages, even to a
# question no document answers. multilingual-e5 packs every text into 0.7–0.9: on the shipped
# set the passage that answers scores 0.81–0.92 (median 0.86), so the bound only stops what is
# plainly elsewhere (questions about football or the weather score 0.76–0.81 at their nearest);
# nearer ones go with the instruction to say when the passages do not answer.
RELEVANT_SIMILARITY = {"e5": 0.81}


@dataclass(frozen=True)
class Passage:
    chunk_id: int
    document_id: int
    document_name: str
    page: int | None
    heading: str
    text: str
    tokens: int
    position: int
    score: float
    # It shares words with the question, or is close enough in meaning (RELEVANT_SIMILARITY):
    # not merely the nearest of unrelated passages.
    relevant: bool = True


def search(
    query: str, document_ids: list[int], limit: int = 5, mode: str = "hybrid", embedder=None
) -> list[Passage]:
    """The `limit` passages of `document_ids` that best answer `query`, best first. `mode`
    "text": full text alone. `embedder` (app.llm.embeddings): its vectors join the ranking."""
    if not document_ids or not query.strip():
        return []
    text = _text_ranking(query, document_ids)
    rankings = [(text, 1.0)]
    close = None  # every passage counts as relevant without a known threshold
    if mode == "hybrid" and embedder is not None:
        ranked, similarities = _vector_ranking(embedder.embed([query], "query")[0], document_ids)
        rankings.append((ranked, VECTOR_WEIGHT))
        threshold = next((v for k, v in RELEVANT_SIMILARITY.items() if k in embedder.name.lower()), None)
        if threshold is not None:
            close = {i for i, similarity in zip(ranked, similarities, strict=True) if similarity >= threshold}
    fused: dict[int, float] = {}
    for ranking, weight in rankings:
        for rank, chunk_id in enumerate(ranking):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (RRF_K + rank + 1)
    best = sorted(fused, key=lambda i: -fused[i])[:limit]
    relevant = None if close is None else set(text) | close
    return _passages(best, fused, relevant)


def _text_ranking(query: str, document_ids: list[int]) -> list[int]:
    words = terms(query)
    if not words:
        return []
    if db.engine.dialect.name == "postgresql":
        statement = sa.text(
            "SELECT id FROM chunk, (SELECT to_tsquery('pg_catalog.french', causerie_fold(:q)) "
            "|| to_tsquery('pg_catalog.english', causerie_fold(:q)) AS q) AS query "
            "WHERE document_id = ANY(:ids) AND search @@ query.q "
            "ORDER BY ts_rank(search, query.q) DESC, id LIMIT :n"
        )
        params = {"q": " | ".join(words), "ids": list(document_ids), "n": CANDIDATES}
    else:
        statement = sa.text(
            "SELECT chunk.id FROM chunk_fts JOIN chunk ON chunk.id = chunk_fts.rowid "
            "WHERE chunk_fts MATCH :q AND chunk.document_id IN (SELECT value FROM json_each(:ids)) "
            "ORDER BY bm25(chunk_fts, 0.5, 1.0), chunk.id LIMIT :n"
        )
        params = {
            "q": " OR ".join(f'"{w}"' for w in words),
            "ids": json.dumps(list(document_ids)),
            "n": CANDIDATES,
        }
    return list(db.session.scalars(statement, params))


class _Vectors:
    """Each document's passage vectors as one matrix, read once per process (a document's
    passages never change: a replaced document is a new one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_document: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def of(self, document_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        missing = [i for i in document_ids if i not in self._by_document]
        if missing:
            rows = db.session.execute(
                sa.select(Chunk.document_id, Chunk.id, Chunk.vector)
                .join(Document)
                .where(Chunk.document_id.in_(missing), Chunk.vector.is_not(None), Document.state == "ready")
                .order_by(Chunk.document_id, Chunk.id)
            ).all()
            grouped: dict[int, list] = {}
            for row in rows:
                grouped.setdefault(row.document_id, []).append(row)
            with self._lock:
                for document_id, found in grouped.items():
                    ids = np.array([r.id for r in found], dtype=np.int64)
                    matrix = np.vstack([np.frombuffer(r.vector, dtype=np.float32) for r in found])
                    self._by_document[document_id] = (ids, matrix)
        parts = [self._by_document[i] for i in document_ids if i in self._by_document]
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 1), dtype=np.float32)
        return np.concatenate([p[0] for p in parts]), np.vstack([p[1] for p in parts])

    def forget(self, document_id: int) -> None:
        with self._lock:
            self._by_document.pop(document_id, None)


VECTORS = _Vectors()


def _vector_ranking(query_vector: np.ndarray, document_ids: list[int]) -> tuple[list[int], list[float]]:
    """The nearest passages, best first, and their cosines."""
    ids, matrix = VECTORS.of(document_ids)
    if not len(ids) or matrix.shape[1] != query_vector.shape[0]:
        return [], []
    scores = matrix @ query_vector.astype(np.float32)
    top = min(CANDIDATES, len(ids))
    best = np.argpartition(-scores, top - 1)[:top]
    best = best[np.argsort(-scores[best])]
    return [int(ids[i]) for i in best], [float(scores[i]) for i in best]


def _passages(
    chunk_ids: list[int], scores: dict[int, float], relevant: set[int] | None = None
) -> list[Passage]:
    if not chunk_ids:
        return []
    rows = db.session.execute(
        sa.select(Chunk, Document.filename).join(Document).where(Chunk.id.in_(chunk_ids))
    ).all()
    by_id = {chunk.id: (chunk, name) for chunk, name in rows}
    return [
        Passage(
            chunk_id=chunk.id,
            document_id=chunk.document_id,
            document_name=name,
            page=chunk.page,
            heading=chunk.heading,
            text=chunk.text,
            tokens=chunk.tokens,
            position=chunk.position,
            score=scores[chunk.id],
            relevant=relevant is None or chunk.id in relevant,
        )
        for chunk, name in (by_id[i] for i in chunk_ids if i in by_id)
    ]


def whole(document_id: int) -> list[Passage]:
    """Every passage of a document in order (for sending it whole)."""
    rows = db.session.execute(
        sa.select(Chunk, Document.filename)
        .join(Document)
        .where(Chunk.document_id == document_id)
        .order_by(Chunk.position)
    ).all()
    return [
        Passage(c.id, c.document_id, name, c.page, c.heading, c.text, c.tokens, c.position, 0.0)
        for c, name in rows
    ]
