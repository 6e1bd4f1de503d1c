"""The Benchmarks page with real models, end to end: minutes of work, so a benchmark, not a test.

What. The admin's run of a suite (the essential one by default) on the real models shipped with
the app (SmolLM2-135M, packaged, and Gemma-3-270M, assembled by setup), started from the page's
form on the real server (waitress on 127.0.0.1), followed through the page's progress URL until it
ends, then read back as the page's JSON export: how long the run took, and for each model and
prompt the time, tokens/s and the check's verdict. Nothing is asserted on speed: the test suite
checks the page with scripted models (tests/browser/test_bench_in_browser.py); this says what the
real ones give on this machine, and fails only when the run does not end as done or an answer has
no verdict.

    .venv/bin/python -m benchmarks.bench_page                         # essentiel, both models
    .venv/bin/python -m benchmarks.bench_page --suite rapide --models SmolLM2-135M-Instruct.Q4_1
    .venv/bin/python -m benchmarks.bench_page --cancel-after 20       # and a cancel mid-run

Two idle cores: about 70 s for the essential suite on both models (4 prompts each).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.client import ChatClient, require_loopback
from benchmarks.server import LiveServer

ROOT = Path(__file__).resolve().parent.parent
GEMMA_FILE = ROOT / "instance" / "models" / "gemma-3-270m-q4_k_m.gguf"
SMOLLM2, GEMMA = "SmolLM2-135M-Instruct.Q4_1", "gemma-3-270m-q4_k_m"
USERNAME, PASSWORD = "admin", "benchmark-password-long-enough"


def start_run(client: ChatClient, suite: str, models: list[str], thinking: str) -> int:
    """The page's form, as the admin submits it."""
    page = client.session.get(client.url("/admin/benchmarks")).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.session.post(
        client.url("/admin/benchmarks"),
        data={
            "csrf_token": token,
            "models": models,
            "suite": suite,
            "repetitions": "1",
            "start": "warm",
            "thinking": thinking,
            "judge": "",
        },
        allow_redirects=False,
    )
    found = re.search(r"/admin/benchmarks/runs/(\d+)$", response.headers.get("Location", ""))
    if response.status_code != 302 or not found:
        sys.exit(f"the page refused the run: {response.status_code} {response.text[:500]}")
    return int(found.group(1))


def follow(client: ChatClient, run_id: int, cancel_after: float | None) -> dict:
    """The progress URL, every second (as the page asks it), until the run ends."""
    progress_url = client.url(f"/admin/benchmarks/runs/{run_id}/progress")
    began, last = time.monotonic(), ""
    while True:
        progress = client.session.get(progress_url).json()
        current = progress["current"] or {}
        line = (
            f"{progress['done']}/{progress['total']} {current.get('model', '')} {current.get('prompt', '')}"
        )
        if line != last:
            print(f"{time.monotonic() - began:7.1f} s  {line} {current.get('phase', '')}", flush=True)
            last = line
        if progress["finished"]:
            return progress
        if cancel_after is not None and time.monotonic() - began > cancel_after:
            page = client.session.get(client.url(f"/admin/benchmarks/runs/{run_id}")).text
            token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            asked = time.monotonic()
            client.session.post(
                client.url(f"/admin/benchmarks/runs/{run_id}/cancel"), data={"csrf_token": token}
            )
            while not client.session.get(progress_url).json()["finished"]:
                time.sleep(0.1)
            print(f"cancelled: the run ended {time.monotonic() - asked:.2f} s after the click")
            cancel_after = None
        time.sleep(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="essentiel")
    parser.add_argument("--models", default=f"{SMOLLM2},{GEMMA}")
    parser.add_argument("--thinking", default="default")
    parser.add_argument("--cancel-after", type=float, default=None, help="seconds; then Cancel")
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    with tempfile.TemporaryDirectory(prefix="causerie-bench-page-") as tmp:
        models_dir = Path(tmp) / "models"
        models_dir.mkdir()
        if GEMMA in models:
            if not GEMMA_FILE.exists():
                sys.exit(f"{GEMMA_FILE} is missing: ./scripts/setup assembles it")
            (models_dir / GEMMA_FILE.name).symlink_to(GEMMA_FILE)
        env = {"MODELS_DIR": str(models_dir), "SECRET_KEY": "benchmark-only"}
        with LiveServer(Path(tmp) / "instance", env) as server:
            require_loopback(server.base_url)
            client = ChatClient(server.base_url, timeout=60)
            assert client.register(USERNAME, PASSWORD).ok  # the first account: the admin
            began = time.monotonic()
            run_id = start_run(client, args.suite, models, args.thinking)
            progress = follow(client, run_id, args.cancel_after)
            wall = time.monotonic() - began
            export = client.session.get(client.url(f"/admin/benchmarks/runs/{run_id}.json")).json()
    run = export["runs"][0]
    print(f"\nthe page's run of {args.suite} on {', '.join(models)}: {wall:.1f} s, state {run['state']}")
    print(f"{'model':32} {'prompt':28} {'time':>8} {'tok/s':>7}  check")
    unchecked = 0
    for result in run["results"]:
        verdict = {True: "pass", False: "fail", None: "no verdict"}[result.get("passed")]
        unchecked += result.get("passed") is None
        seconds = result.get("total_seconds")
        speed = result.get("tokens_per_second")
        print(
            f"{result['model'][:32]:32} {result['prompt_name'][:28]:28} "
            f"{f'{seconds:.1f} s' if seconds is not None else '—':>8} "
            f"{f'{speed:.1f}' if speed else '—':>7}  {verdict}"
        )
    expected = "cancelled" if args.cancel_after is not None else "done"
    if progress["state"] != expected or (expected == "done" and unchecked):
        print(f"FAILED: the run ended {progress['state']}, {unchecked} answer(s) without a verdict")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
