"""What dense retrieval costs on this machine: the embedding model's file and memory, passages
embedded per second (200 tokens each, 1 and 2 threads), a question's embedding latency, and
numpy's scoring of 10,000 stored vectors.

    .venv/bin/python -m benchmarks.embedding_speed [--passages 64] [--model PATH]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from pathlib import Path

import numpy as np
import psutil

from app.llm.embeddings import Embedder
from config import Config

SENTENCES = [
    "Les congés payés sont posés dans l'outil de gestion des temps au moins un mois à l'avance.",
    "Tout déplacement professionnel à l'étranger est validé par le responsable hiérarchique.",
    "The expense report is filed within thirty days, with every receipt scanned.",
    "En cas d'incendie, les occupants évacuent par l'escalier le plus proche sans utiliser l'ascenseur.",
    "Visitors sign in at reception and wear their badge at all times on the premises.",
    "Le télétravail est possible deux jours par semaine après accord écrit du manager.",
    "Passwords are changed every ninety days and never shared, even with the help desk.",
    "La mutuelle rembourse les lunettes une fois tous les deux ans, sur présentation de la facture.",
]


def passages(embedder: Embedder, count: int, tokens: int, seed: int = 7) -> list[str]:
    """`count` different passages of about `tokens` tokens each (the model's own count)."""
    draw = random.Random(seed)
    made = []
    for _ in range(count):
        text = ""
        while len(embedder._llama.tokenize(text.encode())) < tokens:
            text += draw.choice(SENTENCES) + " "
        made.append(text.strip())
    return made


def rss() -> int:
    return psutil.Process().memory_info().rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=Config.EMBEDDING_MODEL)
    parser.add_argument("--passages", type=int, default=64)
    args = parser.parse_args()
    path = Path(args.model)
    # Other work on the machine slows every figure, llama.cpp's threads most (they wait for each
    # other): the load says how quiet it was.
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    before = rss()
    started = time.perf_counter()
    one = Embedder(path, threads=1)
    loaded = time.perf_counter() - started
    one.embed(["warm-up"])
    added = rss() - before
    print(f"model: {one.name}, {one.dimensions} dimensions, file {path.stat().st_size / 1e6:.1f} MB")
    print(f"load: {loaded * 1000:.0f} ms, RSS added by loading and a first text: {added / 2**20:.0f} MiB")

    texts = passages(one, args.passages, 200)
    lengths = [len(one._llama.tokenize(t.encode())) for t in texts]
    print(f"passages: {len(texts)} of {statistics.mean(lengths):.0f} tokens on average")
    for threads in (1, 2):
        model = one if threads == 1 else Embedder(path, threads=threads)
        model.embed(texts[:2])
        started, cpu = time.perf_counter(), time.process_time()
        model.embed(texts)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(
            f"embedding, {threads} thread(s): {len(texts) / elapsed:.1f} passages/s "
            f"({cpu / len(texts) * 1000:.0f} ms of CPU each)"
        )
        if model is not one:
            model.close()

    question = "Combien de jours de télétravail puis-je prendre chaque semaine ?"
    latencies = []
    for _ in range(30):
        started = time.perf_counter()
        one.embed([question], "query")
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    print(
        f"question embedding (1 thread): median {statistics.median(latencies) * 1000:.1f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.1f} ms"
    )

    stored = np.random.default_rng(7).standard_normal((10_000, one.dimensions), dtype=np.float32)
    stored /= np.linalg.norm(stored, axis=1, keepdims=True)
    query = one.embed([question], "query")[0]
    timings = []
    for _ in range(50):
        started = time.perf_counter()
        scores = stored @ query
        best = np.argpartition(-scores, 20)[:20]
        best[np.argsort(-scores[best])]
        timings.append(time.perf_counter() - started)
    print(
        f"scoring 10,000 x {one.dimensions} vectors with numpy (+ top 20): "
        f"median {statistics.median(timings) * 1000:.2f} ms, max {max(timings) * 1000:.2f} ms"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    one.close()


if __name__ == "__main__":
    main()
