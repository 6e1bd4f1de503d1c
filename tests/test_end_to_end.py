"""The whole path for real: waitress on 127.0.0.1, the HTTP interface, SmolLM2, the database."""

import os
import signal
import time

import pytest

from benchmarks.client import ChatClient
from benchmarks.server import LiveServer
from tests.conftest import PASSWORD
from tests.patience import patience

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="module")
def server(instance):
    # Partial answers are saved every half second here, so a kill mid-answer is quick to test;
    # greedy decoding with a seed makes each prompt's answer (and its length) the same every run.
    env = {"PARTIAL_SAVE_SECONDS": "0.5", "GENERATION_TEMPERATURE": "0", "GENERATION_SEED": "42"}
    with LiveServer(instance, env=env) as server:
        yield server


@pytest.fixture(scope="module")
def user(server) -> ChatClient:
    client = ChatClient(server.base_url)
    assert client.register("alice", PASSWORD).ok
    return client


def wait_for_state(
    client: ChatClient, conversation_id: int, message_id: int, timeout: float = 5.0, moved=None
) -> dict:
    """The message once it is no longer being written, or as it stands after `timeout` seconds.
    With `moved` (what changes while the work goes on, from the message), `timeout` is how long
    that may stand still: a real model's answer is waited for as long as it moves, however slow
    the machine (tests/patience.py)."""
    deadline, last = time.monotonic() + timeout, None
    while True:
        message = next(m for m in client.messages(conversation_id) if m["id"] == message_id)
        if moved is not None and (now := moved(message)) != last:
            deadline, last = time.monotonic() + timeout, now
        if message["state"] != "generating" or time.monotonic() > deadline:
            return message
        time.sleep(0.1)


def written(message: dict) -> int:
    """What moves while an answer is written: its stored length (saved every few seconds)."""
    return len(message["content"])


def test_real_model_streams_tokens_one_by_one_and_what_streamed_is_stored(user):
    conversation_id = user.create_conversation()
    answer = user.ask(conversation_id, "Explain in a few sentences why the sky is blue.")
    assert answer.end.name == "done" and answer.end.data["state"] == "complete"
    assert len(answer.tokens) >= 10, "the text arrives in many events"
    arrival = answer.tokens[-1].at - answer.tokens[0].at
    assert arrival > 0.05, "tokens arrive as they are generated, not all at the end"
    stored = user.messages(conversation_id)[-1]
    assert stored["content"] == answer.text
    assert stored["state"] == "complete"
    assert stored["model"] == "SmolLM2-135M-Instruct.Q4_1"
    assert stored["stats"]["completion_tokens"] >= len(answer.tokens)


def test_reloading_the_page_finds_the_conversation(user):
    conversation_id = user.create_conversation()
    user.ask(conversation_id, "Say hello to the maintenance team.")
    page = user.session.get(user.url(f"/c/{conversation_id}")).text
    assert "Say hello to the maintenance team." in page
    listed = user.session.get(user.url("/conversations")).json()["conversations"]
    assert listed[0]["id"] == conversation_id


def test_earlier_turns_reach_the_model(user):
    conversation_id = user.create_conversation()
    first = user.ask(conversation_id, "My name is Camille.")
    second = user.ask(conversation_id, "What is my name?")
    first_stats, second_stats = first.end.data["stats"], second.end.data["stats"]
    assert second_stats["prompt_tokens"] > first_stats["prompt_tokens"] + first_stats["completion_tokens"]


def test_closing_the_connection_mid_answer_leaves_the_answer_to_finish(user):
    conversation_id = user.create_conversation()
    stream = user.stream_answer(conversation_id, "Write a very long story about a dragon and a knight.")
    answer = next(stream)
    for _event in stream:
        if len(answer.tokens) >= 5:
            break
    stream.close()  # the browser tab goes away
    stored = wait_for_state(user, conversation_id, answer.message_id, timeout=patience(60), moved=written)
    assert stored["state"] == "complete"
    assert stored["content"].startswith(answer.text)
    assert stored["stats"]["finish_reason"] in ("stop", "length")


def test_a_page_that_comes_back_mid_answer_gets_the_whole_answer_once(user):
    conversation_id = user.create_conversation()
    stream = user.stream_answer(conversation_id, "Write a long story about a lighthouse keeper.")
    answer = next(stream)
    for _event in stream:
        if len(answer.tokens) >= 5:
            break
    stream.close()  # reloaded
    again = user.follow(answer.message_id)  # from its first event
    assert [e.seq for e in again.events] == list(range(1, len(again.events) + 1)), "nothing lost or doubled"
    assert again.end.name == "done" and again.text.startswith(answer.text)
    assert user.messages(conversation_id)[-1]["content"] == again.text


def test_a_killed_server_loses_at_most_the_last_seconds_and_marks_the_answer_interrupted(user, server):
    conversation_id = user.create_conversation()
    stream = user.stream_answer(conversation_id, "Write a very long story about a lighthouse keeper.")
    answer = next(stream)
    for event in stream:
        if answer.tokens and event.at - answer.tokens[0].at > 1.5:
            break
    assert answer.end is None, "the answer must still be streaming when the server is killed"
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    server.start()  # same instance folder, same database
    stored = wait_for_state(user, conversation_id, answer.message_id)
    assert stored["state"] == "interrupted"
    assert stored["content"] and answer.text.startswith(stored["content"])
