"""Does the page's stream keep the engine's pace?

Runs one prompt with the same model, threads, context (2048), max tokens (256), temperature (0)
and seed (42) directly on `LlamaCppEngine` in this process, and through the real server (on the
same in-process engine, LLAMA_ENGINE=inprocess; the llama-server engine: benchmarks/serving.py)
(waitress on 127.0.0.1, a fresh instance folder) read as Server-Sent Events by `ChatClient`.
One warm-up per side (model loading excluded), then the two alternate, never at the same time;
a run during which another process used the CPU is done again. Figures, client-measured:

* tokens/s = (text chunks - 1) / (last chunk's time - first chunk's time), per run. Headline:
  median(server) / median(direct), target >= 0.98.
* first token: direct = calling stream_chat to the first Text; server = sending the POST to
  reading the first `token` event. Headline: median(server) - median(direct), target <= 20 ms.

The cross-check line compares each server run with what the server's engine reported for that
same run (`done` stats): it is immune to the machine's speed drifting between runs, and tells
the relay's own cost (tokens/s ratio, time added to the first token) from a slower decode.
"outputs identical: no" means the server ignored GENERATION_TEMPERATURE / GENERATION_SEED.
Mind the min/max: where single runs vary by 10 % or more (a shared 2-core VM), 5 runs cannot
resolve a 2 % difference between the medians; take --runs 15 or more.
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
from dataclasses import asdict, dataclass
from pathlib import Path

from app.llm.engines.llamacpp import LlamaCppEngine, machine_cores
from app.llm.types import ChatMessage, Final, GenerationOptions, Text
from benchmarks.client import ChatClient, require_loopback
from benchmarks.server import LiveServer

PROMPT = "Write a long story about a lighthouse keeper."
MODEL = "SmolLM2-135M-Instruct.Q4_1"
CONTEXT, MAX_TOKENS, TEMPERATURE, SEED = 2048, 256, 0.0, 42
QUIET = 0.05  # other processes may use at most this share of the machine's CPU during a run


@dataclass
class Run:
    first_token: float  # seconds: request to first text, as received
    rate: float  # tokens/s: first text to last, as received
    chunks: int
    engine_first_token: float  # what the engine reported (server side: the done event's stats)
    engine_rate: float
    text: str
    foreign: float = 0.0  # share of the machine's CPU used by other processes during the run


def pace(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0


def direct_run(engine: LlamaCppEngine) -> Run:
    options = GenerationOptions(max_tokens=MAX_TOKENS, temperature=TEMPERATURE, seed=SEED)
    times: list[float] = []
    parts: list[str] = []
    stats = None
    started = time.perf_counter()
    for chunk in engine.stream_chat(MODEL, [ChatMessage("user", PROMPT)], options, threading.Event()):
        if isinstance(chunk, Text):
            times.append(time.perf_counter())
            parts.append(chunk.text)
        elif isinstance(chunk, Final):
            stats = chunk.stats
    if not times or stats is None:
        raise RuntimeError("the engine wrote no text")
    text = "".join(parts)
    return Run(
        times[0] - started, pace(times), len(times), stats.first_token_seconds, stats.tokens_per_second, text
    )


def server_run(client: ChatClient) -> Run:
    conversation = client.create_conversation(MODEL)  # a fresh one: the same prompt every time
    stream = client.stream_answer(conversation, PROMPT)
    answer = next(stream)
    for event in stream:  # read to the end of the response: the server is idle afterwards
        if event.name == "error":
            raise RuntimeError(f"server error: {event.data}")
    times = [e.at for e in answer.tokens]
    end = answer.end
    if not times or end is None or end.name != "done":
        raise RuntimeError("the server streamed no answer")
    stats = end.data["stats"]
    first = times[0] - answer.sent_at
    return Run(
        first, pace(times), len(times), stats["first_token_seconds"], stats["tokens_per_second"], answer.text
    )


def cpu_ticks(pids: list[int]) -> tuple[int, int]:
    """Busy CPU ticks of the whole machine, and of these processes (all their threads)."""
    user, nice, system, _idle, _iowait, irq, softirq = map(int, Path("/proc/stat").read_text().split()[1:8])
    ours = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ours += int(fields[11]) + int(fields[12])  # utime, stime
    return user + nice + system + irq + softirq, ours


def foreign_share(before: tuple[int, int], after: tuple[int, int], seconds: float) -> float:
    others = (after[0] - before[0]) - (after[1] - before[1])
    return max(0, others) / (os.sysconf("SC_CLK_TCK") * seconds * machine_cores())


def undisturbed(run: Callable[[], Run], pids: list[int], attempts: int = 4, patience: float = 300) -> Run:
    """Waits until no other process uses the CPU (tests, builds), runs; again if one did meanwhile."""
    for _ in range(attempts):
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            before = cpu_ticks(pids)
            time.sleep(1.0)
            if foreign_share(before, cpu_ticks(pids), 1.0) < QUIET:
                break
        before, started = cpu_ticks(pids), time.monotonic()
        result = run()
        result.foreign = foreign_share(before, cpu_ticks(pids), time.monotonic() - started)
        if result.foreign < QUIET:
            break
    return result


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="measured runs per side (default 5)")
    parser.add_argument(
        "--threads", type=int, default=machine_cores(), help="llama.cpp threads (default: cores)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="causerie-bench-") as tmp:
        models_dir, instance = Path(tmp, "models"), Path(tmp, "instance")
        env = {
            # The same engine on both sides: the in-process one (the fallback). What the app costs
            # over its llama-server engine is benchmarks/serving.py's to measure.
            "LLAMA_ENGINE": "inprocess",
            "LLAMA_THREADS": str(args.threads),
            "LLAMA_CONTEXT": str(CONTEXT),
            "MAX_ANSWER_TOKENS": str(MAX_TOKENS),
            "MODELS_DIR": str(models_dir),
            "DEFAULT_MODEL": MODEL,
            "GENERATION_TEMPERATURE": str(TEMPERATURE),
            "GENERATION_SEED": str(SEED),
            "DATABASE_URL": f"sqlite:///{instance / 'causerie.sqlite3'}",
            "SECRET_KEY": "benchmark-only",
        }
        engine = LlamaCppEngine(models_dir, threads=args.threads, context=CONTEXT)
        with LiveServer(instance, env) as server:  # stopped on the way out, Ctrl-C included
            require_loopback(server.base_url)
            client = ChatClient(server.base_url, timeout=300)
            client.register("bench", "benchmark-password-1")
            sides: dict[str, Callable[[], Run]] = {
                "direct": lambda: direct_run(engine),
                "server": lambda: server_run(client),
            }
            for side in sides.values():  # warm-up: loads the model on each side
                side()
            runs: dict[str, list[Run]] = {"direct": [], "server": []}
            for i in range(args.runs):  # alternate, swapping the order every round
                for name in ("direct", "server") if i % 2 == 0 else ("server", "direct"):
                    runs[name].append(undisturbed(sides[name], [os.getpid(), server.process.pid]))

    figures: dict = {"cores": machine_cores(), "cpu": cpu_model(), "threads": args.threads, "model": MODEL}
    for name, side in runs.items():
        figures[name] = {
            "tokens_per_second": spread([r.rate for r in side]),
            "first_token_ms": spread([r.first_token * 1000 for r in side]),
            "runs": [{k: v for k, v in asdict(r).items() if k != "text"} for r in side],
        }
    direct, served = figures["direct"], figures["server"]
    ratio = served["tokens_per_second"]["median"] / direct["tokens_per_second"]["median"]
    added = served["first_token_ms"]["median"] - direct["first_token_ms"]["median"]
    relay_ratio = statistics.median(r.rate / r.engine_rate for r in runs["server"])
    relay_added = statistics.median((r.first_token - r.engine_first_token) * 1000 for r in runs["server"])
    foreign = max(r.foreign for side in runs.values() for r in side)
    identical = len({r.text for side in runs.values() for r in side}) == 1
    figures.update(
        ratio=ratio,
        added_first_token_ms=added,
        relay_ratio=relay_ratio,
        relay_added_first_token_ms=relay_added,
        identical=identical,
        other_processes_cpu=foreign,
    )

    print(f"machine  {figures['cores']} cores, {figures['cpu']}")
    print(
        f"model    {MODEL}, {args.threads} threads, context {CONTEXT}, max {MAX_TOKENS} tokens, "
        f"temperature {TEMPERATURE:g}, seed {SEED}, {args.runs} runs per side"
    )
    print(f"\n{'':16}{'direct  median   min   max':>28}{'server  median   min   max':>28}")
    for label, key in (("tokens/s", "tokens_per_second"), ("first token, ms", "first_token_ms")):
        cells = ["{median:14.1f}{min:7.1f}{max:7.1f}".format(**figures[s][key]) for s in ("direct", "server")]
        print(f"{label:16}{cells[0]:>28}{cells[1]:>28}")
    chunks = [
        f"{min(r.chunks for r in runs[s])}-{max(r.chunks for r in runs[s])}" for s in ("direct", "server")
    ]
    print(f"{'text chunks':16}{chunks[0]:>28}{chunks[1]:>28}")
    print(
        f"\ntokens/s  direct {direct['tokens_per_second']['median']:.1f}  server "
        f"{served['tokens_per_second']['median']:.1f}  ratio {ratio:.3f} (target >= 0.98)"
        f"{'' if ratio >= 0.98 else '  MISSED'}"
    )
    print(
        f"first token  direct {direct['first_token_ms']['median']:.1f} ms  server "
        f"{served['first_token_ms']['median']:.1f} ms  added {added:.1f} ms (target <= 20 ms)"
        f"{'' if added <= 20 else '  MISSED'}"
    )
    print(
        f"cross-check, server stream vs the server's engine in the same runs: tokens/s ratio "
        f"{relay_ratio:.3f}, first token {relay_added:+.1f} ms"
    )
    print(
        f"outputs identical: {'yes' if identical else 'no'}; other processes' CPU during runs: "
        f"at most {foreign:.0%}{'  (DISTURBED: figures unreliable)' if foreign >= QUIET else ''}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the server and the temporary folder are already gone
        raise SystemExit(130) from None
