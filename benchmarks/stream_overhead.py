"""Does the page's stream keep the engine's pace?

Runs one prompt with the same model, seed (42), temperature (0), threads and context once
directly on `LlamaCppEngine` in this process and once through the real server (waitress,
127.0.0.1, a fresh instance folder) read as Server-Sent Events by `ChatClient`, alternating
the two and never overlapping them. Every figure is measured by this client:

* tokens/s: (text chunks - 1) / (time of the last chunk - time of the first), per run;
  the headline is median(server) / median(direct), target >= 0.98.
* first token: direct = from calling stream_chat to the first Text; server = from sending
  the POST to reading the first `token` event. The headline is the time the server path
  adds, median(server) - median(direct), target <= 20 ms.

"engine" rows are what the engine reports about itself (on the server side: the `done`
event's stats): a server engine rate below the direct one means the decode itself was slowed
(cores shared with the relay or the client), not the relay. Both sides should produce the
same text; "identical: no" means the server does not honour GENERATION_TEMPERATURE/SEED.
Model loading is excluded (one warm-up run per side). Usage: python -m benchmarks.stream_overhead
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.llm.engines.llamacpp import LlamaCppEngine, machine_cores
from app.llm.types import ChatMessage, Final, GenerationOptions, Text
from benchmarks.client import ChatClient, require_loopback
from benchmarks.server import LiveServer

PROMPT = "Write a long story about a lighthouse keeper."
MODEL = "SmolLM2-135M-Instruct.Q4_1"
CONTEXT = 2048
MAX_TOKENS = 256
SEED = 42
TEMPERATURE = 0.0


@dataclass
class Run:
    first_token: float  # seconds, request to first text
    rate: float  # tokens/s, first text to last, as received
    chunks: int
    text: str
    engine_first_token: float  # the engine's own figures (server side: from the done event)
    engine_rate: float
    completion_tokens: int
    foreign: float = 0.0  # share of the machine's CPU used by other processes during the run


def pace(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0


def direct_run(engine: LlamaCppEngine, model: str) -> Run:
    options = GenerationOptions(max_tokens=MAX_TOKENS, temperature=TEMPERATURE, seed=SEED)
    times: list[float] = []
    parts: list[str] = []
    stats = None
    started = time.perf_counter()
    for chunk in engine.stream_chat(model, [ChatMessage("user", PROMPT)], options, threading.Event()):
        if isinstance(chunk, Text):
            times.append(time.perf_counter())
            parts.append(chunk.text)
        elif isinstance(chunk, Final):
            stats = chunk.stats
    if not times or stats is None:
        raise RuntimeError("the engine wrote no text")
    return Run(times[0] - started, pace(times), len(times), "".join(parts),
               stats.first_token_seconds, stats.tokens_per_second, stats.completion_tokens)


def server_run(client: ChatClient, model: str) -> Run:
    conversation = client.create_conversation(model)  # a fresh one: the same prompt every time
    stream = client.stream_answer(conversation, PROMPT)
    answer = next(stream)
    stats: dict = {}
    for event in stream:  # read to the end of the response: the server is idle afterwards
        if event.name == "error":
            raise RuntimeError(f"server error: {event.data}")
        if event.name == "done":
            stats = event.data["stats"]
    times = [e.at for e in answer.tokens]
    if not times or not stats:
        raise RuntimeError("the server streamed no answer")
    return Run(times[0] - answer.sent_at, pace(times), len(times), answer.text,
               stats["first_token_seconds"], stats["tokens_per_second"], stats["completion_tokens"])


def cpu_ticks(pids: list[int]) -> tuple[int, int]:
    """Busy CPU ticks of the whole machine, and of these processes (all their threads)."""
    user, nice, system, _idle, _iowait, irq, softirq = map(int, Path("/proc/stat").read_text().split()[1:8])
    ours = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ours += int(fields[11]) + int(fields[12])  # utime, stime
    return user + nice + system + irq + softirq, ours


def foreign_share(before: tuple[int, int], after: tuple[int, int], seconds: float) -> float:
    ticks = os.sysconf("SC_CLK_TCK") * seconds * machine_cores()
    return max(0, (after[0] - before[0]) - (after[1] - before[1])) / ticks


def undisturbed(run: Callable[[], Run], pids: list[int], attempts: int = 4, patience: float = 300) -> Run:
    """Runs when no other process uses the CPU; again when one did meanwhile (tests, builds)."""
    for _ in range(attempts):
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            before = cpu_ticks(pids)
            time.sleep(0.5)
            if foreign_share(before, cpu_ticks(pids), 0.5) < 0.05:
                break
        before, started = cpu_ticks(pids), time.monotonic()
        result = run()
        result.foreign = foreign_share(before, cpu_ticks(pids), time.monotonic() - started)
        if result.foreign < 0.05:
            break
    return result


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def spread(values: list[float], scale: float = 1.0) -> dict[str, float]:
    return {"median": statistics.median(values) * scale, "min": min(values) * scale,
            "max": max(values) * scale}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="measured runs per side (default 5)")
    parser.add_argument("--threads", type=int, default=machine_cores(),
                        help="llama.cpp threads (default: the machine's cores)")
    parser.add_argument("--model", default=MODEL, help=f"model id (default {MODEL})")
    parser.add_argument("--models-dir", type=Path, help="extra folder of *.gguf files, for both sides")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="causerie-bench-") as tmp:
        models_dir = args.models_dir or Path(tmp, "models")
        instance = Path(tmp, "instance")
        env = {
            "LLAMA_THREADS": str(args.threads), "LLAMA_CONTEXT": str(CONTEXT),
            "MAX_ANSWER_TOKENS": str(MAX_TOKENS), "MODELS_DIR": str(models_dir),
            "DEFAULT_MODEL": args.model, "GENERATION_TEMPERATURE": str(TEMPERATURE),
            "GENERATION_SEED": str(SEED), "DATABASE_URL": f"sqlite:///{instance / 'causerie.sqlite3'}",
            "SECRET_KEY": "benchmark-only",
        }
        engine = LlamaCppEngine(models_dir, threads=args.threads, context=CONTEXT)
        with LiveServer(instance, env) as server:  # stopped on the way out, Ctrl-C included
            require_loopback(server.base_url)
            client = ChatClient(server.base_url, timeout=300)
            client.register("bench", "benchmark-password-1")
            runners = {"direct": lambda: direct_run(engine, args.model),
                       "server": lambda: server_run(client, args.model)}
            for side in runners.values():  # warm-up: loads the model on each side
                side()
            runs: dict[str, list[Run]] = {"direct": [], "server": []}
            for i in range(args.runs):  # alternate, swapping the order every round
                for name in ("direct", "server") if i % 2 == 0 else ("server", "direct"):
                    runs[name].append(undisturbed(runners[name], [os.getpid(), server.process.pid]))

    figures: dict = {"cores": machine_cores(), "cpu": cpu_model(), "threads": args.threads,
                     "model": args.model, "runs": args.runs, "load_average": os.getloadavg()}
    for name, side in runs.items():
        figures[name] = {
            "tokens_per_second": spread([r.rate for r in side]),
            "first_token_ms": spread([r.first_token for r in side], 1000),
            "engine_tokens_per_second": spread([r.engine_rate for r in side]),
            "engine_first_token_ms": spread([r.engine_first_token for r in side], 1000),
            "chunks": [r.chunks for r in side], "completion_tokens": [r.completion_tokens for r in side],
            "other_processes_cpu": [round(r.foreign, 3) for r in side],
        }
    direct, served = figures["direct"], figures["server"]
    ratio = served["tokens_per_second"]["median"] / direct["tokens_per_second"]["median"]
    added = served["first_token_ms"]["median"] - direct["first_token_ms"]["median"]
    texts = {r.text for side in runs.values() for r in side}
    figures.update(ratio=ratio, added_first_token_ms=added, identical=len(texts) == 1,
                   ratio_ok=ratio >= 0.98, added_ok=added <= 20)

    print(f"machine  {figures['cores']} cores, {figures['cpu']}, load average "
          + " ".join(f"{x:.2f}" for x in figures["load_average"]))
    print(f"model    {args.model}, {args.threads} threads, context {CONTEXT}, max {MAX_TOKENS} tokens, "
          f"temperature {TEMPERATURE:g}, seed {SEED}, {args.runs} runs per side")
    print(f"\n{'':24}{'direct (med/min/max)':>26}{'server (med/min/max)':>26}")
    rows = [("tokens/s", "tokens_per_second"), ("first token, ms", "first_token_ms"),
            ("engine tokens/s", "engine_tokens_per_second"),
            ("engine first token, ms", "engine_first_token_ms")]
    for label, key in rows:
        cells = ["{median:8.1f}{min:8.1f}{max:8.1f}".format(**figures[s][key]) for s in ("direct", "server")]
        print(f"{label:24}{cells[0]:>26}{cells[1]:>26}")
    for label, key in (("text chunks", "chunks"), ("completion tokens", "completion_tokens")):
        print(f"{label:24}{' '.join(map(str, direct[key])):>26}{' '.join(map(str, served[key])):>26}")
    foreign = max(r.foreign for side in runs.values() for r in side)
    print(f"other processes' CPU during the runs: at most {foreign:.0%} of the machine"
          + ("  (DISTURBED: figures unreliable)" if foreign >= 0.05 else ""))
    print(f"\ntokens/s  direct {direct['tokens_per_second']['median']:.1f}  server "
          f"{served['tokens_per_second']['median']:.1f}  ratio {ratio:.3f} (target >= 0.98) "
          f"{'OK' if figures['ratio_ok'] else 'MISSED'}")
    print(f"first token  direct {direct['first_token_ms']['median']:.1f} ms  server "
          f"{served['first_token_ms']['median']:.1f} ms  added {added:.1f} ms (target <= 20 ms) "
          f"{'OK' if figures['added_ok'] else 'MISSED'}")
    print(f"outputs identical: {'yes' if figures['identical'] else f'no ({len(texts)} different texts)'}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
