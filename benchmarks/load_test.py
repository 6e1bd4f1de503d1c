"""Twenty people chatting at once, two tabs each: is anything lost, does anything fail, do pages
stay fast?

N simulated users (default 20), each a thread with its own session, sign up (or sign in when the
account exists) all at once, then chat for --seconds over the page's own HTTP interface
(`ChatClient`): a conversation, a short prompt (one of a few), the whole answer read as Server-Sent
Events, again; a new conversation every third answer. Each user has a second tab (--tabs 2, a
second session of the same account) that follows every answer as well, from its first event
(`GET /messages/<id>/events`), as a reloaded or second page does: what it reads must be what the
first tab read, event for event. At the deadline each user finishes the answer
it is reading (at most --drain seconds more) and stops. The server is started here on 127.0.0.1
(waitress, a fresh instance folder, temperature 0, --max-tokens per answer), or is the one at --url,
which must be a loopback address. Before the load, one answer warms the model up (loading excluded).
Every figure is measured by the client:

* lost or out of order: every event of an answer carries its number (SSE `id:` 1, 2, 3…); a number
  skipped is an event lost, one not above the previous is out of order. Then the stored message
  (`GET /conversations/<id>/messages`) must equal the streamed text, and its state the streamed end:
  an answer that differs counts as a mismatch, with the characters past their common beginning.
* errors: answers ended by an `error` event, streams that broke before their end, HTTP 5xx and any
  other failed request or exception. The 503 with `Retry-After` that the server answers when too
  many answers are in progress (MAX_STREAMS) is deliberate and counted apart; the user then waits
  min(Retry-After, 5 s) and tries again.
* first token: sending the message to reading its first `token` event, queue included. Queue wait:
  the first `queued` status to the next status (the answer's turn); the longest queue position seen.
* page loads: meanwhile, another signed-in session fetches `GET /` (the chat page) and
  `GET /conversations` every 0.5 s. The percentiles are over the fetches made while at least half the
  users had a stream open (from sending the message to the end of the response); the line says how
  many were made while all of them had. Target: p95 < 300 ms.
* throughput: the server's aggregate, completion tokens of all answers (their `done` statistics) /
  first message sent to last answer ended, against the engine alone: the same work straight on
  the engine the server uses (a llama-server of --slots slots started here, --engine-conversations
  conversations of the same prompts at once, their turns one after another), same model, max
  tokens and temperature, before the load (never during it). The ratio is what the web layer,
  the scheduler, the database and this client (40 threads on the same cores) cost; it cannot
  exceed 1 by much. Per answer, from their statistics: the decode speed (answers decoded
  together share the cores) and the prompt's length. Engine busy: the answers' own time in the
  engine / the load's time, summed over the answers written together (so above 100 %).
* CPU: the share of the machine used during the load by the server, this client and every other
  process. The engine alone waits for a quiet machine and runs again when disturbed (as in
  stream_overhead.py); the load cannot be run again: "DISTURBED" marks figures to take again.

The exit status is 1 when an event was lost or out of order, a stored answer differs, or anything
failed. When the server is started here, its log is searched for errors and for waitress's "Task
queue depth" warning (every thread busy: requests, page loads among them, wait for one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
import requests

from app.llm.engines.gguf_files import machine_cores
from app.llm.engines.llamaserver import LlamaServerEngine
from app.llm.types import ChatMessage, Final, GenerationOptions, Text
from benchmarks.client import ChatClient, RefusedError, StreamedAnswer, require_loopback
from benchmarks.server import LiveServer
from benchmarks.stream_overhead import QUIET, cpu_ticks, undisturbed
from config import Config

MODEL = "SmolLM2-135M-Instruct.Q4_1"
PROMPTS = (
    "Say hello in one sentence.",
    "Name three colours.",
    "What is a lighthouse?",
    "Give me one tip for a rainy day.",
)
PASSWORD = "load-test-password-1"
TURNS_PER_CONVERSATION = 3
PAGES = ("/", "/conversations")
PROBE_EVERY = 0.5  # seconds between two rounds of page loads
RETRY_AT_MOST = 5.0  # seconds a refused user waits before trying again, whatever Retry-After says
READ_TIMEOUT = 120  # seconds without a byte before a request is given up (the server pings every 5 s)
PAGE_TARGET = 0.300  # seconds, p95 of page loads while the streams are open


@dataclass
class Answer:
    user: int
    message_id: int
    sent_at: float
    ended_at: float
    end: str  # complete | stopped (the `done` state), error (an `error` event), broken (no end)
    first_token: float | None  # seconds from sending to the first `token` event
    queue_wait: float  # seconds from the first `queued` status to the next status
    queue_position: int  # the longest position seen, 0 when never queued
    token_events: int
    completion_tokens: int  # the `done` statistics
    decode_rate: float  # tokens/s, as the server's engine reported it (`done` statistics)
    prompt_tokens: int  # the conversation so far, as the engine read it
    engine_seconds: float  # the engine's own time for the answer, prompt reading included
    lost_events: int  # numbers skipped in the ids
    disordered_events: int  # ids not above the previous one
    stored_differs: bool = False  # stored content or state differs from the stream
    differing_chars: int = 0
    broken_by: str = ""
    other_tabs_differ: int = 0  # the user's other tabs that read another text or other events


@dataclass
class Problem:
    where: str
    status: int | None  # HTTP status, None for an exception
    detail: str


@dataclass
class PageLoad:
    path: str
    seconds: float
    open_streams: int  # when the request was sent


@dataclass
class Tally:
    """What the users and the page prober record, from their threads."""

    answers: list[Answer] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    page_loads: list[PageLoad] = field(default_factory=list)
    refused: int = 0  # deliberate 503s
    open_streams: int = 0
    most_open: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def problem(self, where: str, exc: Exception) -> None:
        status = getattr(exc, "status", None)
        if isinstance(exc, requests.HTTPError) and exc.response is not None:
            status = exc.response.status_code
        with self.lock:
            self.problems.append(Problem(where, status, f"{type(exc).__name__}: {str(exc)[:200]}"))

    @contextmanager
    def stream_open(self):
        with self.lock:
            self.open_streams += 1
            self.most_open = max(self.most_open, self.open_streams)
        try:
            yield
        finally:
            with self.lock:
                self.open_streams -= 1


# -- the users ---------------------------------------------------------------------------------
def sign_in(base_url: str, username: str) -> ChatClient:
    """A session for `username`: a new account, or the existing one (a server already used)."""
    client = ChatClient(base_url, timeout=READ_TIMEOUT)
    if not client.register(username, PASSWORD).ok and not client.login(username, PASSWORD).ok:
        raise RuntimeError(f"cannot sign up nor sign in as {username}")
    return client


def another_tab(base_url: str, username: str) -> ChatClient:
    """A second session of an account just made (signing up again would count as failures)."""
    client = ChatClient(base_url, timeout=READ_TIMEOUT)
    response = client.login(username, PASSWORD)
    if not response.ok:
        raise RuntimeError(f"cannot sign in as {username}: {response.status_code}")
    return client


def measure(streamed: StreamedAnswer, user: int, broken_by: str) -> Answer:
    """The figures of one answer, from its events as read."""
    first_token = next((e.at - streamed.sent_at for e in streamed.events if e.name == "token"), None)
    lost = disordered = previous = 0
    for event in streamed.events:
        if event.seq is None or event.seq <= previous:  # an event without an id is out of order too
            disordered += 1
        else:
            lost += event.seq - previous - 1
            previous = event.seq
    queued_at = turn_at = None
    position = 0
    for event in (e for e in streamed.events if e.name == "status"):
        if event.data.get("phase") == "queued":
            queued_at = queued_at or event.at
            position = max(position, event.data.get("position", 0))
        elif queued_at is not None and turn_at is None:
            turn_at = event.at
    end = streamed.end
    ended_at = end.at if end else time.perf_counter()
    if end is None:
        outcome = "broken"
    elif end.name == "error":
        outcome = "error"
    else:
        outcome = end.data.get("state", "?")
    stats = end.data.get("stats", {}) if end is not None and end.name == "done" else {}
    return Answer(
        user=user,
        message_id=streamed.message_id,
        sent_at=streamed.sent_at,
        ended_at=ended_at,
        end=outcome,
        first_token=first_token,
        # Still queued at the end (stopped, failed, broken): the wait lasted until then.
        queue_wait=0.0 if queued_at is None else (turn_at or ended_at) - queued_at,
        queue_position=position,
        token_events=len(streamed.tokens),
        completion_tokens=stats.get("completion_tokens", 0),
        decode_rate=stats.get("tokens_per_second", 0.0),
        prompt_tokens=stats.get("prompt_tokens", 0),
        engine_seconds=stats.get("total_seconds", 0.0),
        lost_events=lost,
        disordered_events=disordered,
        broken_by=broken_by,
    )


def compare_stored(client: ChatClient, conversation: int, streamed: StreamedAnswer, answer: Answer) -> None:
    """The stored message must hold the streamed text and the streamed end."""
    stored = next((m for m in client.messages(conversation) if m["id"] == streamed.message_id), None)
    text, content = streamed.text, stored["content"] if stored else ""
    common = 0
    while common < min(len(text), len(content)) and text[common] == content[common]:
        common += 1
    answer.differing_chars = max(len(text), len(content)) - common
    answer.stored_differs = stored is None or answer.differing_chars > 0 or stored["state"] != answer.end


def ask(
    client: ChatClient, tally: Tally, conversation: int, prompt: str, tabs: list[ChatClient]
) -> tuple[StreamedAnswer, str, list[StreamedAnswer | Exception]]:
    """Send one message and read its whole answer; the other `tabs` follow it meanwhile, from
    its first event. RefusedError when the server does not take it.

    Returns the answer as read, when its stream broke why, and what each other tab read."""
    followed: list[StreamedAnswer | Exception] = []
    readers: list[threading.Thread] = []
    with tally.stream_open():
        stream = client.stream_answer(conversation, prompt)
        streamed = next(stream)
        for tab in tabs:
            reader = threading.Thread(target=follow_in_tab, args=(tab, tally, streamed.message_id, followed))
            reader.start()
            readers.append(reader)
        try:
            for _ in stream:  # to the end of the response: the server has saved the answer by then
                pass
        except requests.RequestException as exc:
            return streamed, f"{type(exc).__name__}: {str(exc)[:200]}", followed
        finally:
            for reader in readers:
                reader.join(READ_TIMEOUT)
    return streamed, "", followed


def follow_in_tab(tab: ChatClient, tally: Tally, message_id: int, followed: list) -> None:
    with tally.stream_open():
        try:
            followed.append(tab.follow(message_id))
        except Exception as exc:  # reported as a difference
            followed.append(exc)


def tabs_differing(streamed: StreamedAnswer, followed: list[StreamedAnswer | Exception]) -> int:
    """The other tabs whose events are not the first tab's, number for number."""
    mine = [(e.seq, e.name, e.data) for e in streamed.events if e.seq is not None]
    return sum(
        isinstance(other, Exception) or [(e.seq, e.name, e.data) for e in other.events if e.seq] != mine
        for other in followed
    )


def chat(
    client: ChatClient, tabs: list[ChatClient], tally: Tally, user: int, model: str, deadline: float
) -> None:
    """One user until the deadline; the answer being read then is read to its end."""
    conversation, turns, sent = None, 0, 0
    while time.perf_counter() < deadline:
        try:
            if conversation is None or turns == TURNS_PER_CONVERSATION:
                conversation, turns = client.create_conversation(model), 0
            prompt = PROMPTS[(user + sent) % len(PROMPTS)]
            streamed, broken_by, followed = ask(client, tally, conversation, prompt, tabs)
            sent += 1
            turns += 1
            answer = measure(streamed, user, broken_by)
            answer.other_tabs_differ = tabs_differing(streamed, followed)
            with tally.lock:
                tally.answers.append(answer)
            if answer.end == "broken":
                conversation = None  # start afresh rather than wait on a half-written answer
            else:
                compare_stored(client, conversation, streamed, answer)
        except RefusedError as exc:
            if exc.status != 503 or exc.retry_after is None:
                tally.problem("send a message", exc)
                conversation = None
                time.sleep(1)
                continue
            with tally.lock:
                tally.refused += 1
            time.sleep(max(0.0, min(exc.retry_after, RETRY_AT_MOST, deadline - time.perf_counter())))
        except Exception as exc:  # every failure is a figure of the report
            tally.problem("chat", exc)
            conversation = None
            time.sleep(1)  # a failure that repeats must not spin


def probe_pages(client: ChatClient, tally: Tally, stop: threading.Event) -> None:
    """Page loads, timed, every PROBE_EVERY seconds until told to stop."""
    while not stop.is_set():
        for path in PAGES:
            open_streams = tally.open_streams
            started = time.perf_counter()
            try:
                response = client.session.get(client.url(path), timeout=READ_TIMEOUT, allow_redirects=False)
                response.raise_for_status()
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code} for GET {path}")
            except Exception as exc:
                tally.problem(f"GET {path}", exc)
                continue
            with tally.lock:
                tally.page_loads.append(PageLoad(path, time.perf_counter() - started, open_streams))
        stop.wait(PROBE_EVERY)


@dataclass
class Load:
    tally: Tally
    started: float
    sign_in_seconds: float
    unfinished: int  # users still reading an answer when the drain time was over
    cpu: dict[str, float]  # share of the machine's CPU during the load: this client, the server, others


class CpuShares:
    """The machine's CPU used by this process, the server's (when known) and all others."""

    def __init__(self, server_pid: int | None) -> None:
        # The server and the llama-server it started (already up: the warm-up loaded the model).
        server = (
            [server_pid, *(child.pid for child in psutil.Process(server_pid).children())]
            if server_pid
            else []
        )
        self.pids = {"client": [os.getpid()], "server": server}
        self.started = time.monotonic()
        self.ticks = self._read()

    def _read(self) -> dict[str, int]:
        ticks = {name: cpu_ticks(pids)[1] for name, pids in self.pids.items()}
        return {**ticks, "machine": cpu_ticks([])[0]}

    def shares(self) -> dict[str, float]:
        now = self._read()
        budget = os.sysconf("SC_CLK_TCK") * (time.monotonic() - self.started) * machine_cores()
        used = {name: (now[name] - self.ticks[name]) / budget for name in now}
        used["others"] = max(0.0, used.pop("machine") - used["client"] - used["server"])
        return used


def run_load(
    base_url: str, users: int, seconds: float, drain: float, model: str, server_pid: int | None, tabs: int
) -> Load:
    prober = sign_in(base_url, "load-prober")  # the first account of a fresh server: the admin
    prober.ask(prober.create_conversation(model), PROMPTS[0])  # warm-up: the model loads now
    started = time.perf_counter()
    with ThreadPoolExecutor(users) as pool:
        names = [f"load-user-{i:02d}" for i in range(1, users + 1)]
        clients = list(pool.map(lambda name: sign_in(base_url, name), names))
    # One after the other: sign-ins from one address at the same instant count as failures until
    # their passwords are checked, and the throttle would make the later ones wait.
    others = [[another_tab(base_url, name) for name in names] for _ in range(tabs - 1)]
    sign_in_seconds = time.perf_counter() - started

    tally, stop = Tally(), threading.Event()
    probe = threading.Thread(target=probe_pages, args=(prober, tally, stop), daemon=True)
    started = time.perf_counter()
    deadline = started + seconds
    threads = [
        threading.Thread(
            target=chat, args=(client, [tab[i] for tab in others], tally, i, model, deadline), daemon=True
        )
        for i, client in enumerate(clients)
    ]
    cpu = CpuShares(server_pid)
    probe.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline + drain - time.perf_counter()))
    stop.set()
    probe.join()
    unfinished = sum(thread.is_alive() for thread in threads)
    return Load(tally, started, sign_in_seconds, unfinished, cpu.shares())


# -- the engine alone --------------------------------------------------------------------------
@dataclass
class EngineAlone:
    answers: int
    completion_tokens: int
    seconds: float
    decode_rates: list[float]  # tokens/s of each answer, as the engine reports it
    prompt_tokens: list[int]
    foreign: float = 0.0  # share of the machine's CPU used by other processes meanwhile

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds


def engine_alone(model: str, max_tokens: int, threads: int, conversations: int, slots: int) -> EngineAlone:
    """The users' work without the web layer: `conversations` conversations of the users' prompts
    at once, TURNS_PER_CONVERSATION turns each, straight on the engine the server uses (a
    llama-server started here with the same slots; its own queue takes what its slots cannot).

    After one answer that loads the model; waits for a quiet machine first, and runs again when
    another process used the CPU meanwhile."""
    with tempfile.TemporaryDirectory(prefix="causerie-load-engine-") as folder:
        engine = LlamaServerEngine(
            Path(folder, "models"), Config.LLAMA_SERVER_BIN, Path(folder, "run"), threads=threads, slots=slots
        )
        options = GenerationOptions(max_tokens=max_tokens, temperature=0.0)

        def answer(history: list[ChatMessage]) -> Final:
            """Answers the history's last message, and adds the answer to it."""
            final, parts = None, []
            for chunk in engine.stream_chat(model, history, options, threading.Event()):
                if isinstance(chunk, Text):
                    parts.append(chunk.text)
                elif isinstance(chunk, Final):
                    final = chunk
            history.append(ChatMessage("assistant", "".join(parts)))
            return final

        def converse(user: int, finals: list[Final]) -> None:
            history: list[ChatMessage] = []
            for sent in range(TURNS_PER_CONVERSATION):
                history.append(ChatMessage("user", PROMPTS[(user + sent) % len(PROMPTS)]))
                finals.append(answer(history))

        def run() -> EngineAlone:
            finals: list[Final] = []
            started = time.perf_counter()
            users = [threading.Thread(target=converse, args=(user, finals)) for user in range(conversations)]
            for thread in users:
                thread.start()
            for thread in users:
                thread.join()
            return EngineAlone(
                len(finals),
                sum(f.stats.completion_tokens for f in finals),
                time.perf_counter() - started,
                [f.stats.tokens_per_second for f in finals],
                [f.stats.prompt_tokens for f in finals],
            )

        try:
            answer([ChatMessage("user", PROMPTS[0])])
            ours = [os.getpid(), *(process.pid for process in engine.processes(model))]
            result = undisturbed(run, ours, attempts=3, patience=120)
        finally:
            engine.close()
    return result


# -- the report --------------------------------------------------------------------------------
def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "max": float("nan")}
    if len(values) == 1:
        return {"p50": values[0], "p95": values[0], "max": values[0]}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "max": max(values)}


def spread(seconds: list[float]) -> str:
    p = percentiles(seconds)
    return "  ".join(f"{k} {p[k]:.2f} s" for k in ("p50", "p95", "max"))


def server_log_findings(log: Path) -> dict:
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    error_lines = [line for line in lines if " ERROR " in line or line.startswith("Traceback")]
    return {
        "errors": len(error_lines),
        "first_errors": error_lines[:3],
        "task_queue_warnings": sum("Task queue depth" in line for line in lines),
    }


def figures_of(load: Load, engine: EngineAlone, users: int) -> dict:
    tally = load.tally
    answers = tally.answers
    ends = {name: sum(a.end == name for a in answers) for name in ("complete", "stopped", "error", "broken")}
    server_errors = [p for p in tally.problems if p.status is not None and p.status >= 500]
    other_problems = len(tally.problems) - len(server_errors)
    ended = [a.ended_at for a in answers if a.end != "broken"]
    elapsed = (max(ended) - load.started) if ended else float("nan")
    completion_tokens = sum(a.completion_tokens for a in answers)
    busy = [s for s in tally.page_loads if s.open_streams >= users / 2]
    pages = {}
    for path in PAGES:
        samples = [s.seconds for s in busy if s.path == path]
        pages[path] = {
            **percentiles(samples),
            "samples": len(samples),
            "all_open": sum(s.path == path and s.open_streams >= users for s in busy),
        }
    return {
        "answers": ends,
        "token_events": sum(a.token_events for a in answers),
        "completion_tokens": completion_tokens,
        "lost_events": sum(a.lost_events for a in answers),
        "disordered_events": sum(a.disordered_events for a in answers),
        "stored_differs": sum(a.stored_differs for a in answers),
        "other_tabs_differ": sum(a.other_tabs_differ for a in answers),
        "differing_chars": sum(a.differing_chars for a in answers),
        "server_errors": len(server_errors),
        "other_failures": other_problems,
        "unfinished": load.unfinished,
        "refused_503": tally.refused,
        "most_open_streams": tally.most_open,
        "first_token": percentiles([a.first_token for a in answers if a.first_token is not None]),
        "queue_wait": percentiles([a.queue_wait for a in answers]),
        "queue_position_max": max((a.queue_position for a in answers), default=0),
        "page_loads": pages,
        "server_tokens_per_second": completion_tokens / elapsed if ended else 0.0,
        "server_seconds": elapsed,
        "engine_tokens_per_second": engine.tokens_per_second,
        "engine_other_processes_cpu": engine.foreign,
        "engine_decode_tokens_per_second": statistics.median(engine.decode_rates),
        "server_decode_tokens_per_second": statistics.median(
            [a.decode_rate for a in answers if a.decode_rate > 0] or [0.0]
        ),
        "engine_prompt_tokens": statistics.mean(engine.prompt_tokens),
        "server_prompt_tokens": statistics.mean([a.prompt_tokens for a in answers] or [0]),
        "server_engine_busy": sum(a.engine_seconds for a in answers) / elapsed if ended else 0.0,
        "cpu": load.cpu,
    }


def errors(figures: dict) -> int:
    ends, f = figures["answers"], figures
    return ends["error"] + ends["broken"] + f["server_errors"] + f["other_failures"] + f["unfinished"]


def print_report(args, base_url: str, load: Load, engine: EngineAlone, figures: dict) -> None:
    f, ends, answers = figures, figures["answers"], load.tally.answers
    where = "given" if args.url else "started here"
    print(f"load          {args.users} users for {args.seconds:g} s on {base_url} ({where})")
    print(
        f"              {args.model}, at most {args.max_tokens} tokens per answer, temperature 0, "
        f"{machine_cores()} cores; all users signed in within {load.sign_in_seconds:.1f} s"
    )
    print(
        f"answers       {len(answers)}: {ends['complete']} complete, {ends['stopped']} stopped, "
        f"{ends['error']} error events, {ends['broken']} broken; {f['completion_tokens']} tokens in "
        f"{f['token_events']} token events; at most {f['most_open_streams']} streams open at once"
    )
    print(
        f"lost events   {f['lost_events']}, out of order {f['disordered_events']}; stored answers unlike "
        f"their stream {f['stored_differs']} ({f['differing_chars']} characters); other tabs that read "
        f"something else {f['other_tabs_differ']}  (must be 0)"
    )
    print(
        f"errors        {errors(f)} (must be 0): server 5xx {f['server_errors']}, other failures "
        f"{f['other_failures']}, error events {ends['error']}, broken streams {ends['broken']}, "
        f"still open after the drain {f['unfinished']}"
    )
    print(f"deliberate    503 (too many answers in progress): {f['refused_503']}")
    print(f"first token   {spread([a.first_token for a in answers if a.first_token is not None])}")
    print(
        f"queue wait    {spread([a.queue_wait for a in answers])}; longest position {f['queue_position_max']}"
    )
    for path, p in f["page_loads"].items():
        verdict = "" if p["p95"] < PAGE_TARGET else "  MISSED"
        print(
            f"page GET {path:<15} p50 {p['p50'] * 1000:.0f} ms  p95 {p['p95'] * 1000:.0f} ms  max "
            f"{p['max'] * 1000:.0f} ms  ({p['samples']} loads with >= {args.users / 2:g} streams open, "
            f"{p['all_open']} with all {args.users})  target p95 < {PAGE_TARGET * 1000:.0f} ms{verdict}"
        )
    ratio = f["server_tokens_per_second"] / f["engine_tokens_per_second"]
    print(
        f"throughput    server {f['server_tokens_per_second']:.1f} tokens/s ({f['completion_tokens']} "
        f"tokens in {f['server_seconds']:.1f} s), engine alone {f['engine_tokens_per_second']:.1f} "
        f"({engine.answers} answers of {args.engine_conversations} conversations at once, straight on a "
        f"llama-server of {args.slots} slots), ratio {ratio:.2f}"
    )
    print(
        f"per answer    decode (median of the answers' own tokens/s): server "
        f"{f['server_decode_tokens_per_second']:.1f}, engine alone "
        f"{f['engine_decode_tokens_per_second']:.1f}; prompt tokens (mean): server "
        f"{f['server_prompt_tokens']:.0f}, engine alone {f['engine_prompt_tokens']:.0f}"
    )
    print(
        f"engine busy   {f['server_engine_busy']:.0%} of the load's time in the server (the answers' own "
        f"total_seconds, prompt reading included)"
    )
    cpu = f["cpu"]
    server_cpu = f"server {cpu['server']:.0%}, " if "server_log" in f else ""
    others = "other processes" if server_cpu else "other processes (the server among them)"
    disturbed = engine.foreign >= QUIET or (server_cpu and cpu["others"] >= QUIET)
    print(
        f"CPU           during the load, share of the machine: {server_cpu}this client {cpu['client']:.0%}, "
        f"{others} {cpu['others']:.0%}; other processes during the engine alone {engine.foreign:.0%}"
        f"{'  (DISTURBED: figures unreliable)' if disturbed else ''}"
    )
    if "server_log" in f:
        log = f["server_log"]
        print(
            f"server log    {log['errors']} errors, {log['task_queue_warnings']} 'Task queue depth' warnings"
        )
        for line in log["first_errors"]:
            print(f"  server log: {line[:300]}")
    for problem in load.tally.problems[:5]:
        print(f"  failure: {problem.where}: {problem.status or ''} {problem.detail}")
    for answer in [a for a in answers if a.end == "broken"][:5]:
        print(
            f"  broken stream: answer {answer.message_id}: {answer.broken_by or 'ended without done/error'}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=20, help="simulated users (default 20)")
    parser.add_argument("--tabs", type=int, default=2, help="tabs per user following each answer (default 2)")
    parser.add_argument("--seconds", type=float, default=60, help="how long they chat (default 60)")
    parser.add_argument(
        "--drain",
        type=float,
        default=120,
        help="at most this long for the answers open at the end (default 120)",
    )
    parser.add_argument("--url", help="a running server, http://127.0.0.1:PORT (default: start one here)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting of the server started here, e.g. MAX_STREAMS=40 (repeatable)",
    )
    parser.add_argument("--model", default=MODEL, help=f"embedded model (default {MODEL})")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=64,
        help="longest answer; the server started here gets it (default 64)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=machine_cores(),
        help="llama.cpp threads, engine alone (default: cores)",
    )
    parser.add_argument(
        "--engine-conversations",
        type=int,
        default=20,
        help="conversations at once, engine alone (default 20, as the users)",
    )
    parser.add_argument("--slots", type=int, default=4, help="llama-server slots, both sides (default 4)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.url:
        if args.env:
            parser.error("--env applies to the server started here, not to --url")
        try:
            require_loopback(args.url)
        except ValueError as exc:
            parser.error(str(exc))
    settings = dict(item.split("=", 1) for item in args.env if "=" in item)
    if len(settings) != len(args.env):
        parser.error("--env takes KEY=VALUE")

    engine = engine_alone(args.model, args.max_tokens, args.threads, args.engine_conversations, args.slots)
    with tempfile.TemporaryDirectory(prefix="causerie-load-") as tmp:
        server = None
        if not args.url:
            instance = Path(tmp, "instance")
            env = {
                "MODELS_DIR": str(Path(tmp, "models")),
                "DEFAULT_MODEL": args.model,
                "MAX_ANSWER_TOKENS": str(args.max_tokens),
                "GENERATION_TEMPERATURE": "0",
                "LLAMA_SLOTS": str(args.slots),
                "LLAMA_THREADS": str(args.threads),
                "DATABASE_URL": f"sqlite:///{instance / 'causerie.sqlite3'}",
                "SECRET_KEY": "load-test-only",
                **settings,
            }
            server = LiveServer(instance, env)
        with server or nullcontext():  # stopped on the way out, Ctrl-C included
            base_url = server.base_url if server else args.url
            server_pid = server.process.pid if server else None
            load = run_load(base_url, args.users, args.seconds, args.drain, args.model, server_pid, args.tabs)
        figures = figures_of(load, engine, args.users)
        if server:
            figures["server_log"] = server_log_findings(server.log_path)

    print_report(args, base_url, load, engine, figures)
    if args.json:
        figures["answer_list"] = [asdict(a) for a in load.tally.answers]
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    lost = figures["lost_events"] + figures["disordered_events"] + figures["stored_differs"]
    lost += figures["other_tabs_differ"]
    return 1 if lost or errors(figures) else 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # the server and the temporary folder are already gone
        raise SystemExit(130) from None
