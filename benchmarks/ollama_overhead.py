"""Does the Ollama engine keep Ollama's pace?

The engine reads each answer in a thread of its own and hands the pieces over through a queue
(so that it can keep its deadlines and hear Stop). This measures what that costs: the same
request — one prompt, greedy decoding with a seed, 128 tokens — read directly with the official
`ollama` client and through `OllamaEngine.stream_chat`, alternating, never at the same time,
after one warm-up each (loading excluded). Figures, measured by this script:

* pace = (pieces - 1) / (last piece's time - first piece's time), per run. Headline:
  median(engine) / median(direct), target >= 0.98.
* first piece: from the call to the first text. Headline: median(engine) - median(direct).

By default the host is the stand-in of the tests (tests/ollama_server.py: SmolLM2's real tokens
over Ollama's HTTP API, 1 thread by default), in a process of its own. `--host http://127.0.0.1:11434
--model phi3:mini` measures a real Ollama; only a host on this machine's loopback is accepted, as for
every benchmark here.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import ollama

from app.llm.engines.ollama import OllamaEngine
from app.llm.types import ChatMessage, GenerationOptions, Text
from benchmarks.client import require_loopback

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "Write a long story about a lighthouse keeper."
TOKENS, SEED = 128, 42


def pace(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0


def direct(host: str, model: str) -> tuple[float, float, str]:
    client = ollama.Client(host)
    started, times, text = time.perf_counter(), [], []
    for part in client.chat(
        model=model,
        messages=[{"role": "user", "content": PROMPT}],
        options={"temperature": 0, "seed": SEED, "num_predict": TOKENS},
        stream=True,
    ):
        if part.message.content:
            times.append(time.perf_counter())
            text.append(part.message.content)
    return times[0] - started, pace(times), "".join(text)


def through_engine(engine: OllamaEngine, model: str) -> tuple[float, float, str]:
    options = GenerationOptions(max_tokens=TOKENS, temperature=0.0, seed=SEED)
    started, times, text = time.perf_counter(), [], []
    for chunk in engine.stream_chat(model, [ChatMessage("user", PROMPT)], options, threading.Event()):
        if isinstance(chunk, Text):
            times.append(time.perf_counter())
            text.append(chunk.text)
    return times[0] - started, pace(times), "".join(text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--host", help="an Ollama host on 127.0.0.1 (default: the tests' stand-in)")
    parser.add_argument("--model", default="smollm2:135m")
    # One thread leaves a core to this client: on 2 cores, a decode that must share its cores
    # with the reader's Python threads slows by a varying amount, and the ratio drowns in it.
    parser.add_argument("--threads", type=int, default=1, help="the stand-in's llama.cpp threads")
    args = parser.parse_args()
    standin = None
    if args.host:
        require_loopback(args.host)
        host = args.host
    else:
        # In a process of its own, as Ollama is: sharing this one's interpreter would blur the figures.
        standin = subprocess.Popen(
            [sys.executable, "-m", "tests.ollama_server", str(args.threads)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        host = standin.stdout.readline().strip()
    try:
        engine = OllamaEngine(host)
        direct(host, args.model), through_engine(engine, args.model)  # warm-up: loading excluded
        runs = {"direct": [], "engine": []}
        for _ in range(args.runs):
            runs["direct"].append(direct(host, args.model))
            runs["engine"].append(through_engine(engine, args.model))
    finally:
        if standin:
            standin.terminate()
            standin.wait()
    print(f"{args.runs} runs each, {TOKENS} tokens, model {args.model} on {host}")
    for side, results in runs.items():
        firsts, paces = [r[0] * 1000 for r in results], [r[1] for r in results]
        first, rate = statistics.median(firsts), statistics.median(paces)
        print(
            f"{side:7} first piece {first:7.1f} ms  pace {rate:6.1f}/s "
            f"(range {min(paces):.1f}-{max(paces):.1f})"
        )
    same = all(d[2] == e[2] for d, e in zip(runs["direct"], runs["engine"], strict=True))
    ratio = statistics.median(r[1] for r in runs["engine"]) / statistics.median(r[1] for r in runs["direct"])
    added = statistics.median(r[0] for r in runs["engine"]) - statistics.median(r[0] for r in runs["direct"])
    print(f"pace engine / direct: {ratio:.3f} (target >= 0.98)")
    print(f"first piece, engine - direct: {added * 1000:+.1f} ms (the engine also asks /api/ps first)")
    print(f"outputs identical: {'yes' if same else 'no'}")


if __name__ == "__main__":
    main()
