"""The serving benchmark runs end to end (a tiny run of each of its parts): it stays out of CI
otherwise, and must not rot. Its figures are not checked here: a noisy machine's speed is not
a test's business (see benchmarks/serving.py and the README's figures)."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.model
ROOT = Path(__file__).resolve().parent.parent
LIMIT = 60.0  # seconds, asserted with a 3x margin for a noisy machine


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
