"""Benchmarks run end to end (a tiny run of each of their parts): they stay out of CI otherwise,
and must not rot. Their figures are not checked here: a noisy machine's speed is not a test's
business (see benchmarks/serving.py, benchmarks/hardening.py and the README's figures)."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 60.0  # seconds, asserted with a 3x margin for a noisy machine


@pytest.mark.model
def test_the_serving_benchmark_runs_every_part_against_llama_server():
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.serving", "--smoke", "--patience", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=LIMIT * 5,
    )
    took = time.monotonic() - started
    print(f"the smoke run took {took:.1f} s\n{done.stdout[-1500:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    for part in ("single:", "users4:", "users8:", "turns:", "mixed"):
        assert part in done.stdout, part
    assert took < LIMIT * 3


def test_the_hardening_benchmark_prints_both_attacks_against_the_server_before_and_now():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.hardening", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # a hang, not a speed: the smoke run takes ~15 s
    )
    print(done.stdout[-1500:])
    assert done.returncode == 0, done.stderr[-3000:]
    slow, flood = done.stdout.split("An Ollama-protocol host")
    for side in ("before (plain waitress", "now    (flask serve"):
        assert side in slow and slow.count("with the sockets held") == 2, slow
    for side in ("before (the ollama client", "now    (the app's engine"):
        assert side in flood and flood.count("ended after") == 2, flood


def test_the_retrieval_benchmark_prints_recall_and_latency():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.retrieval", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # a hang, not a speed: the smoke run takes ~15 s
    )
    print(done.stdout[-1500:])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Recall@5 on the shipped set (91 questions, 13 documents)" in done.stdout
    assert "full text" in done.stdout and "no shared word (40)" in done.stdout
    assert "SQLite      text" in done.stdout
