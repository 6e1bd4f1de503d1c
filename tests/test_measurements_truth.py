"""The app's measurements are true: what it records agrees with an independent client and the OS.

Real generations (each at least 3 s) through the real server. The client times each answer
from the moment its request is sent (first token, end); the operating system gives the
server process's CPU time before and after. The app's record (its clock starts when the
request is received, see `send_message`) must agree within 10 % or 50 ms, whichever is larger.
"""

import sqlite3
import time

import pytest

from benchmarks.client import ChatClient
from benchmarks.server import LiveServer
from tests.conftest import PASSWORD
from tests.test_stop_frees_the_engine import cpu_seconds

pytestmark = pytest.mark.model
PROMPTS = (
    "Write a very long story about a lighthouse keeper and a storm.",
    "Explain in great detail how a steam engine works, step by step.",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"GENERATION_TEMPERATURE": "0", "GENERATION_SEED": "11", "MAX_ANSWER_TOKENS": "400"}
    with LiveServer(tmp_path_factory.mktemp("instance"), env=env) as server:
        yield server


def recorded(server, message_id: int, timeout: float = 5.0) -> sqlite3.Row:
    database = server.instance_dir / "causerie.sqlite3"
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(database) as connection:
            connection.row_factory = sqlite3.Row
            row = connection.execute(
                "SELECT * FROM generation WHERE message_id = ?", (message_id,)
            ).fetchone()
        if row is not None or time.monotonic() > deadline:
            return row
        time.sleep(0.05)


def agrees(name: str, recorded_value: float, measured: float) -> bool:
    allowed = max(0.10 * measured, 0.050)
    off = recorded_value - measured
    print(f"{name}: recorded {recorded_value:.3f}, measured {measured:.3f}, off by {off:+.3f}")
    return abs(recorded_value - measured) <= allowed


def test_recorded_times_and_cpu_agree_with_the_client_and_the_os(server):
    client = ChatClient(server.base_url)
    assert client.register("mesure", PASSWORD).ok
    pid = server.process.pid
    for prompt in PROMPTS:
        conversation = client.create_conversation()
        time.sleep(0.5)  # a quiet server before the OS's count starts
        cpu_before = cpu_seconds(pid)
        answer = client.ask(conversation, prompt)
        record = recorded(server, answer.message_id)
        cpu_used = cpu_seconds(pid) - cpu_before
        first_token = answer.tokens[0].at - answer.sent_at
        total = answer.end.at - answer.sent_at
        assert answer.end.data["state"] == "complete" and total >= 3.0, "a generation of at least 3 s"
        assert record["outcome"] == "complete" and record["concurrent"] == 1
        assert agrees("first token (s)", record["first_token_seconds"], first_token)
        assert agrees("total (s)", record["total_seconds"], total)
        assert agrees("CPU of the server process (s)", record["process_cpu_seconds"], cpu_used)
        assert record["completion_tokens"] == answer.end.data["stats"]["completion_tokens"]
