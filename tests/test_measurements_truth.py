"""The app's measurements are true: what it records agrees with an independent client and the OS,
for an answer alone and for answers written together in one engine's batch.

Real generations through the real server and its llama-server. The client times each answer
from the moment its request is sent (first token, end); the operating system gives the
llama-server process's CPU time before and after. The app's record (its clock starts when the
request is received) must agree within 5 % or 50 ms, whichever is larger; the answers' CPU
shares must add up to the engine process's CPU time within 5 %.
"""

import sqlite3
import threading
import time

import psutil
import pytest

from benchmarks.client import ChatClient
from benchmarks.server import LiveServer
from tests.conftest import PASSWORD
from tests.patience import patience

pytestmark = pytest.mark.model
PROMPTS = (
    "Write a very long story about a lighthouse keeper and a storm.",
    "Explain in great detail how a steam engine works, step by step.",
    "Describe, at length, a walk through a forest in autumn.",
    "Tell the long history of a small harbour town, century by century.",
)
SHARE = 0.05  # of the measured value
FLOOR = 0.050  # seconds


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {
        "GENERATION_TEMPERATURE": "0",
        "GENERATION_SEED": "11",
        "MAX_ANSWER_TOKENS": "300",
        "LLAMA_SLOTS": "4",
    }
    with LiveServer(tmp_path_factory.mktemp("instance"), env=env) as server:
        yield server


@pytest.fixture(scope="module")
def clients(server) -> list[ChatClient]:
    clients = [ChatClient(server.base_url) for _ in PROMPTS]
    for number, client in enumerate(clients):
        assert client.register(f"mesure{number}", PASSWORD).ok
    clients[0].ask(clients[0].create_conversation(), "Hello")  # the model loaded before any count
    return clients


def engine_cpu(server) -> float:
    """CPU seconds of the llama-server processes the app started (its children)."""
    total = 0.0
    for child in psutil.Process(server.process.pid).children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


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


def agrees(name: str, recorded_value: float, measured: float, transit: float = 0.0) -> bool:
    """Within 5 % or 50 ms; and for a time the client measures around the app's, also within 3x
    the time a request takes to reach this server and come back right now (`transit`): the app's
    clock starts when it receives the request, and a busy machine delays that, not its measure."""
    allowed = max(SHARE * measured, FLOOR, 3 * transit)
    off = recorded_value - measured
    print(f"{name}: recorded {recorded_value:.3f}, measured {measured:.3f}, off {off:+.3f} of ±{allowed:.3f}")
    return abs(off) <= allowed


def transit(client: ChatClient) -> float:
    """The longest of a few round trips of a small signed-in request to the server, in seconds."""
    times = []
    for _ in range(3):
        sent = time.monotonic()
        client.session.get(client.url("/conversations")).raise_for_status()
        times.append(time.monotonic() - sent)
    return max(times)


def check_times(answer, record, client: ChatClient) -> None:
    first_token = answer.tokens[0].at - answer.sent_at
    total = answer.end.at - answer.sent_at
    trip = transit(client)
    assert answer.end.data["state"] == "complete" and record["outcome"] == "complete"
    assert agrees("first token (s)", record["first_token_seconds"], first_token, trip)
    assert agrees("total (s)", record["total_seconds"], total, trip)
    assert record["completion_tokens"] == answer.end.data["stats"]["completion_tokens"]


def test_an_answer_alone_is_recorded_as_the_client_and_the_os_measured_it(server, clients):
    client = clients[0]
    conversation = client.create_conversation()
    time.sleep(0.5)  # a quiet engine before the OS's count starts
    cpu_before = engine_cpu(server)
    answer = client.ask(conversation, PROMPTS[0])
    cpu_used = engine_cpu(server) - cpu_before
    record = recorded(server, answer.message_id)
    assert answer.end.at - answer.sent_at >= 1.0, "an answer long enough to measure"
    assert record["concurrent"] == 1
    check_times(answer, record, client)
    assert agrees("CPU of the engine process (s)", record["process_cpu_seconds"], cpu_used)


def test_answers_written_together_share_the_engines_cpu_and_keep_their_own_times(server, clients):
    conversations = [client.create_conversation() for client in clients]
    answers = [None] * len(clients)
    ready = threading.Barrier(len(clients) + 1)

    def ask(number: int) -> None:
        ready.wait()
        answers[number] = clients[number].ask(conversations[number], PROMPTS[number])

    threads = [threading.Thread(target=ask, args=(number,)) for number in range(len(clients))]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    cpu_before = engine_cpu(server)
    ready.wait()
    for thread in threads:
        thread.join(patience(600))  # as long as a busy machine takes: the figures are what is checked
    cpu_used = engine_cpu(server) - cpu_before
    records = [recorded(server, answer.message_id) for answer in answers]
    print(f"written together: at most {max(r['concurrent'] for r in records)} at once")
    assert max(r["concurrent"] for r in records) >= 3
    for answer, record, client in zip(answers, records, clients, strict=True):
        check_times(answer, record, client)
    shares = sum(r["process_cpu_seconds"] for r in records)
    print("shares: " + ", ".join(f"{r['process_cpu_seconds']:.2f}" for r in records))
    assert agrees("the shares' sum vs the engine process's CPU (s)", shares, cpu_used)
