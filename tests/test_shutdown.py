"""Stopping the server (SIGTERM, SIGINT): running answers are kept as interrupted, and the
process is gone within 10 s."""

import signal
import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa

from app import cli
from app.bench.runs import BenchmarkRunner
from app.cli import GracefulShutdown
from app.extensions import db
from app.models import BenchmarkRun, Message
from benchmarks.client import ChatClient
from benchmarks.server import LiveServer
from tests.conftest import PASSWORD, sse_events
from tests.patience import patience
from tests.test_chat_web import StreamInThread, new_conversation, send, slow_answer, stored_answer

EXIT_SECONDS = 10.0  # the promise: out within this after SIGTERM


@pytest.fixture
def shutdown(app) -> GracefulShutdown:
    """The shutdown as `flask serve` sets it up, minus the waitress server and the signals."""
    shutdown = GracefulShutdown(app, server=None, socket_map={})
    app.before_request(shutdown.refuse_new_answers)  # before the app's first request
    return shutdown


def test_once_shutting_down_a_new_message_gets_a_503_and_pages_still_load(shutdown, client, auth):
    auth.register()
    conversation_id = new_conversation(client)
    shutdown.started.set()
    response = send(client, conversation_id, "Bonjour")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.json["error"]
    assert client.get(f"/conversations/{conversation_id}/messages").json["messages"] == []
    assert client.get("/").status_code == 200


def test_shutdown_interrupts_a_running_answer_which_keeps_what_it_wrote(app, shutdown, client, auth, engine):
    auth.register()
    slow_answer(engine, 500)
    stream = StreamInThread(client, new_conversation(client), "raconte")
    stream.wait_for_tokens(5)
    shutdown.began = time.monotonic()
    shutdown.started.set()
    shutdown._interrupt_answers()
    elapsed = time.monotonic() - shutdown.began
    print(f"answer interrupted and saved {elapsed:.3f} s after the shutdown began")
    assert elapsed < cli.ANSWERS_SECONDS
    events = stream.join()
    name, done = events[-1]
    assert name == "done" and done["state"] == "interrupted"
    streamed = "".join(data["text"] for name, data in events if name == "token")
    answer = stored_answer(app, stream.id)
    assert answer.state == "interrupted"
    assert answer.content == streamed and len(streamed.split()) >= 5


def test_an_answer_left_generating_is_marked_interrupted_by_the_safety_net(
    app, shutdown, client, auth, monkeypatch
):
    auth.register()
    response = send(client, new_conversation(client), "Bonjour")
    assert sse_events(response.get_data(as_text=True))[-1][0] == "done"
    message_id = int(response.headers["X-Message-Id"])
    # As if its stream had not got round to its last save (stuck writing to a slow client).
    with app.app_context():
        db.session.execute(sa.update(Message).where(Message.id == message_id).values(state="generating"))
        db.session.commit()
    monkeypatch.setattr(cli, "ANSWERS_SECONDS", 0.3)
    shutdown.began = time.monotonic()
    shutdown._interrupt_answers()
    elapsed = time.monotonic() - shutdown.began
    print(f"gave up waiting for the unsaved answer after {elapsed:.3f} s")
    # Bounded by the 0.3 s set (3x, and the saves after it on a busy machine), not the 6 s default.
    assert elapsed < 3.0, "the wait for the answers is bounded"
    answer = stored_answer(app, message_id)
    assert answer.state == "interrupted" and answer.content == "Bonjour le monde."


def test_shutdown_marks_a_running_benchmark_interrupted_before_the_server_exits(
    app, shutdown, client, auth, engine, monkeypatch
):
    auth.register()  # the first account: the admin
    slow_answer(engine, 500)
    end = BenchmarkRunner._end

    def slow_end(self, run, state):  # a slow disk: the run's last save takes a while
        time.sleep(0.3)
        return end(self, run, state)

    monkeypatch.setattr(BenchmarkRunner, "_end", slow_end)
    form = {"models": ["tiny"], "suite": "rapide", "repetitions": "1", "start": "cold", "thinking": "default"}
    run_url = client.post("/admin/benchmarks", data=form).headers["Location"]
    deadline = time.monotonic() + patience(30)  # however long a busy machine takes to start it
    while time.monotonic() < deadline:
        current = client.get(f"{run_url}/progress").json["current"] or {}
        if current.get("phase") == "answering" and current.get("tokens", 0) >= 5:
            break
        time.sleep(0.02)
    assert current.get("phase") == "answering", "the benchmark must be answering when the signal comes"
    shutdown.began = time.monotonic()
    shutdown.started.set()
    shutdown._interrupt_answers()
    elapsed = time.monotonic() - shutdown.began
    print(f"benchmark interrupted and saved {elapsed:.3f} s after the shutdown began")
    assert elapsed < cli.ANSWERS_SECONDS
    # What the process leaves behind when it exits right after (os._exit: no thread finishes).
    with app.app_context():
        run = db.session.scalars(db.select(BenchmarkRun)).one()
        assert run.state == "interrupted" and run.finished_at is not None
        assert run.steps_done == 0 and run.results == []  # the cut answer is no measure


# -- the real server, the real model -----------------------------------------------------------
@pytest.mark.model
def test_sigterm_keeps_the_partial_answer_as_interrupted_and_exits_within_10_s(tmp_path):
    # Partial saves are far apart here: what is stored can only come from the shutdown's save.
    env = {"PARTIAL_SAVE_SECONDS": "600", "GENERATION_TEMPERATURE": "0", "GENERATION_SEED": "42"}
    instance = tmp_path / "instance"
    server = LiveServer(instance, env=env).start()
    try:
        user = ChatClient(server.base_url, timeout=15)  # a stream that hangs fails the test
        assert user.register("alice", PASSWORD).ok
        conversation_id = user.create_conversation()
        stream = user.stream_answer(conversation_id, "Write a very long story about a lighthouse keeper.")
        answer = next(stream)
        for _event in stream:
            if len(answer.tokens) >= 20:
                break
        assert answer.end is None, "the answer must still be streaming when the signal comes"

        exited_at: list[float] = []
        waiter = threading.Thread(target=lambda: (server.process.wait(), exited_at.append(time.monotonic())))
        waiter.start()
        text_at_signal = answer.text
        signalled_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        for _event in stream:  # what the server still sends, until it ends the stream
            pass
        stream_ended = time.monotonic() - signalled_at
        waiter.join(EXIT_SECONDS + 5)
        assert exited_at, "the server is still running"
        exit_seconds = exited_at[0] - signalled_at
        print(f"stream ended {stream_ended:.2f} s and the process exited {exit_seconds:.2f} s after SIGTERM")
        assert exit_seconds < EXIT_SECONDS
        assert server.process.returncode == 0
    finally:
        server.stop()

    assert answer.end is not None and answer.end.name == "done", "the client is told the answer ended"
    assert answer.end.data["state"] == "interrupted"
    with sqlite3.connect(instance / "causerie.sqlite3") as database:
        state, content = database.execute(
            "SELECT state, content FROM message WHERE id = ?", (answer.message_id,)
        ).fetchone()
    assert state == "interrupted"
    # Everything streamed is kept: the text before the signal, and the last tokens before the
    # engine noticed the cancellation.
    assert content == answer.text and content.startswith(text_at_signal)
    print(f"{len(text_at_signal)} characters streamed before the signal, {len(content)} stored")
    log = server.log_path.read_text()
    assert "shutting down: 1 answers interrupted" in log
