"""llama.cpp's own server as the embedded engine: started by the app on 127.0.0.1 behind a key
of its own, answers decoded together in its slots, a prompt cache per conversation, restarted
when it dies, gone when the app goes. The real binary and the real SmolLM2."""

import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import psutil
import pytest

from app.llm.engines.llamaserver import LlamaServerEngine
from app.llm.types import (
    ENGINE_CRASHED,
    ChatMessage,
    EngineError,
    Final,
    GenerationOptions,
    Phase,
    Progress,
    Text,
)
from config import Config

pytestmark = pytest.mark.model
SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1"
BINARY = Config.LLAMA_SERVER_BIN
GREEDY = GenerationOptions(max_tokens=24, temperature=0.0, seed=7)

if not BINARY.is_file():  # pragma: no cover - scripts/setup installs it
    pytest.skip(f"no llama-server at {BINARY} (scripts/setup builds it)", allow_module_level=True)


def make_engine(tmp_path: Path, **kwargs) -> LlamaServerEngine:
    kwargs.setdefault("threads", 2)
    kwargs.setdefault("context", 1024)
    return LlamaServerEngine(tmp_path / "models", BINARY, tmp_path / "run", **kwargs)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    engine = make_engine(tmp_path_factory.mktemp("llamaserver"), slots=4)
    yield engine
    engine.close()


def run(engine, messages, options=GREEDY, cancel=None):
    chunks = list(engine.stream_chat(SMOLLM2, messages, options, cancel or threading.Event()))
    assert isinstance(chunks[-1], Final)
    return chunks, "".join(c.text for c in chunks if isinstance(c, Text)), chunks[-1].stats


def ask(text: str) -> list[ChatMessage]:
    return [ChatMessage("user", text)]


def server_of(engine, model=SMOLLM2):
    return engine.servers.running()[model]


def test_the_server_listens_on_loopback_only_and_wants_its_own_key(engine):
    run(engine, ask("Hello"))
    server = server_of(engine)
    listening = {c.laddr.ip for c in psutil.Process(server.pid).net_connections() if c.status == "LISTEN"}
    assert listening == {"127.0.0.1"}
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("POST", "/completion", '{"prompt": "x", "n_predict": 1}')
    assert connection.getresponse().status == 401  # no key, no answer


def test_its_key_is_in_its_environment_never_on_its_command_line(engine):
    run(engine, ask("Hello"))
    server = server_of(engine)
    command = Path(f"/proc/{server.pid}/cmdline").read_bytes()
    assert server.key.encode() not in command
    assert f"LLAMA_API_KEY={server.key}".encode() in Path(f"/proc/{server.pid}/environ").read_bytes()
    assert b"--no-webui" in command and b"--no-kv-unified" in command and b"--no-cache-idle-slots" in command


def test_a_conversations_next_turn_reads_only_its_new_question(engine):
    history = ask("Name three colours.")
    _, first, stats = run(engine, history)
    time.sleep(0.5)  # people take longer than this to ask again: the turn's end is read meanwhile
    history += [ChatMessage("assistant", first), ChatMessage("user", "And three fruits?")]
    chunks, _, second = run(engine, history)
    read = sum(c.tokens for c in chunks if isinstance(c, Progress))
    print(f"turn 2: {second.prompt_tokens} prompt tokens, {second.cached_tokens} from the cache, {read} read")
    # The first turn, its answer, and the template's end of that turn and start of the next.
    assert second.cached_tokens >= stats.prompt_tokens + stats.completion_tokens + 3
    assert read == second.prompt_tokens - second.cached_tokens <= 16


def test_every_turn_of_a_long_conversation_reads_only_its_new_question(engine):
    """Each turn takes the earlier ones as the slot holds them, the answers as generated
    included, however many turns there are."""
    options = GenerationOptions(max_tokens=48, temperature=0.0, seed=7)
    history: list[ChatMessage] = []
    reads = []
    for question in ("Where is Lisbon?", "What should I eat there?", "And in Porto?", "Thanks!"):
        history.append(ChatMessage("user", question))
        _, answer, stats = run(engine, history, options)
        reads.append(stats.prompt_tokens - stats.cached_tokens)
        history.append(ChatMessage("assistant", answer))
    print(f"prompt tokens read at each turn: {reads}")
    assert all(read <= 16 for read in reads[1:])


def test_answers_are_decoded_together_in_the_slots(engine):
    run(engine, ask("Hello"))  # loaded
    started, ended = [], []

    def one(i):
        started.append(time.monotonic())
        run(
            engine,
            ask(f"Write a short poem about the number {i}."),
            GenerationOptions(max_tokens=48, temperature=0),
        )
        ended.append(time.monotonic())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    most = 0
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        _, slots = server_of(engine).call("GET", "/slots")
        most = max(most, sum(1 for slot in slots if slot.get("is_processing")))
        time.sleep(0.02)
    for thread in threads:
        thread.join()
    assert most >= 3, f"at most {most} slots were busy at once"


def test_fewer_slots_when_memory_would_not_hold_them(tmp_path):
    small = make_engine(tmp_path, slots=8, context=4096, cache_mb=0, memory_bytes=200 * 2**20)
    plan = small.plan(SMOLLM2, GenerationOptions())
    assert 1 <= plan.slots < 8 and plan.slots_wanted == 8


def test_a_killed_server_fails_its_answers_within_seconds_and_the_next_answer_works(tmp_path):
    engine = make_engine(tmp_path, slots=2)
    try:
        run(engine, ask("Hello"))
        server = server_of(engine)
        chunks = engine.stream_chat(
            SMOLLM2, ask("Tell a long story."), GenerationOptions(max_tokens=400), threading.Event()
        )
        next(c for c in chunks if isinstance(c, Text))
        killed_at = time.monotonic()
        os.kill(server.pid, signal.SIGKILL)
        with pytest.raises(EngineError) as failure:
            for _ in chunks:
                pass
        took = time.monotonic() - killed_at
        print(f"answer failed {took:.2f} s after the kill")
        assert failure.value.code == ENGINE_CRASHED and took < 5
        _, text, _ = run(engine, ask("Hello again"))  # restarted
        assert text and server_of(engine).pid != server.pid
    finally:
        engine.close()


def test_an_answer_asked_the_instant_its_server_died_is_written_by_the_server_started_again(tmp_path):
    """The server's sockets close before the kernel reports its end: for that instant it is
    still taken for alive, and the answer asked then must wait for the next server, not fail."""
    engine = make_engine(tmp_path, slots=2)
    try:
        run(engine, ask("Hello"))
        server = server_of(engine)
        os.kill(server.pid, signal.SIGKILL)
        server.popen.wait(5)
        asking, lied = threading.current_thread(), []

        def alive() -> bool:  # to the answer's first look (is it ready? may it be had?) only
            if threading.current_thread() is asking and len(lied) < 2:
                lied.append(True)
                return True
            return server.popen.poll() is None

        server.alive = alive
        chunks, text, _ = run(engine, ask("Hello again"))
        assert text and server_of(engine).pid != server.pid
        assert Phase("loading") in chunks  # the wait for the new server is shown as loading
    finally:
        engine.close()


def test_a_server_left_behind_by_an_earlier_run_is_killed_when_the_engine_starts(tmp_path):
    first = make_engine(tmp_path, slots=1)
    run(first, ask("Hello"))
    left = server_of(first).pid
    with first.servers._cond:  # its app is gone, without a word: nothing looks after its server
        first.servers._closed = True
    second = make_engine(tmp_path, slots=1)  # the same instance folder, as after a crash
    try:
        run(second, ask("Hello"))
        assert not psutil.pid_exists(left) or psutil.Process(left).status() == psutil.STATUS_ZOMBIE
    finally:
        second.close()


def test_the_server_dies_with_the_app_even_when_the_app_is_killed(tmp_path):
    script = f"""
import sys, threading, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from pathlib import Path
from app.llm.engines.llamaserver import LlamaServerEngine
from app.llm.types import ChatMessage, GenerationOptions
folder = Path({str(tmp_path)!r})
engine = LlamaServerEngine(folder / "models", Path({str(BINARY)!r}), folder / "run", threads=1)
hello = [ChatMessage("user", "Hi")]
list(engine.stream_chat({SMOLLM2!r}, hello, GenerationOptions(max_tokens=2), threading.Event()))
print(engine.servers.running()[{SMOLLM2!r}].pid, flush=True)
time.sleep(60)
"""
    app = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(app.stdout.readline())
        assert psutil.pid_exists(pid)
        app.kill()  # SIGKILL: no clean-up of ours runs
        app.wait()
        deadline = time.monotonic() + 5
        while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "llama-server outlived the app"
            time.sleep(0.05)
    finally:
        app.kill()


def test_a_new_context_restarts_the_model_once_idle_and_never_switches_back_at_once(tmp_path, monkeypatch):
    import app.llm.engines.llamaserver_process as process

    engine = make_engine(tmp_path, slots=1, context=512)
    try:
        run(engine, ask("Hello"))
        first = server_of(engine)
        monkeypatch.setattr(process, "PLAN_SETTLE", 0.0)  # the first server has run long enough
        _, _, stats = run(engine, ask("Hello"), GenerationOptions(max_tokens=4, context=768))
        assert stats.context_window == 768 and server_of(engine).pid != first.pid
        restarted = server_of(engine).pid
        monkeypatch.setattr(process, "PLAN_SETTLE", 30.0)
        # An answer asked before the admin's change, still queued: written by the running server.
        _, _, late = run(engine, ask("Hello"), GenerationOptions(max_tokens=4, context=512))
        assert late.context_window == 768 and server_of(engine).pid == restarted
    finally:
        engine.close()


def test_unloading_stops_the_process(tmp_path):
    engine = make_engine(tmp_path, slots=1)
    run(engine, ask("Hello"))
    pid = server_of(engine).pid
    assert engine.is_loaded(SMOLLM2) and engine.unload(SMOLLM2)
    deadline = time.monotonic() + 5
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not engine.is_loaded(SMOLLM2)


def test_a_line_past_the_bound_from_the_server_ends_the_answer_without_holding_it():
    """A server gone wrong (or not the one started) sending 200 MB without a line break."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from types import SimpleNamespace

    from app.llm.engines.llamaserver import _CompletionCall
    from app.llm.types import ENGINE_LINE_MAX_BYTES, ENGINE_REPLY_TOO_LARGE

    class Flood(BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            try:
                for _ in range(200):
                    self.wfile.write(b"a" * (1024 * 1024))
            except OSError:
                pass  # the reader went away: what is wanted

        def log_message(self, *args):
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Flood) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        server = SimpleNamespace(port=httpd.server_address[1], key="k")
        call = _CompletionCall(server, {"prompt": "x"}, threading.Event(), stall_timeout=30)
        tracemalloc.start()
        try:
            with pytest.raises(EngineError) as caught:
                list(call.parts())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            call.close()
            httpd.shutdown()
    assert caught.value.code == ENGINE_REPLY_TOO_LARGE
    assert peak < 20 * ENGINE_LINE_MAX_BYTES
