"""One person's conversation never appears in another's answer: canary words in several people's
conversations, written together in llama-server's slots, and again after their prompts were
evicted from the slots and restored from the RAM cache (llama.cpp's open reports #27148,
#27422, #27994, #28056 concern exactly that). On the real server with the real model."""

import secrets
import sqlite3
import threading

import pytest

from benchmarks.client import ChatClient
from benchmarks.server import LiveServer
from tests.conftest import PASSWORD

pytestmark = pytest.mark.model
PEOPLE = 4  # twice the slots: every turn of a conversation finds its prefix evicted, in RAM
TURNS = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {
        "GENERATION_TEMPERATURE": "0",
        "MAX_ANSWER_TOKENS": "40",
        "LLAMA_SLOTS": "2",
        "PROMPT_CACHE_MB": "256",
    }
    with LiveServer(tmp_path_factory.mktemp("instance"), env=env) as server:
        yield server


def cached_tokens(server) -> list[int]:
    with sqlite3.connect(server.instance_dir / "causerie.sqlite3") as connection:
        return [row[0] or 0 for row in connection.execute("SELECT cached_prompt_tokens FROM generation")]


def test_no_answer_ever_holds_another_persons_canary(server):
    people = []
    for number in range(PEOPLE):
        client = ChatClient(server.base_url)
        assert client.register(f"personne{number}", PASSWORD).ok
        canary = f"ZORBLAX{secrets.randbelow(10**8):08d}"
        people.append((client, client.create_conversation(), canary))
    answers: dict[str, list[str]] = {canary: [] for _, _, canary in people}

    def converse(client: ChatClient, conversation: int, canary: str, turn: int) -> None:
        question = (
            f"My secret code word is {canary}. Repeat it back to me exactly."
            if turn == 0
            else "What is my secret code word? Write it exactly."
        )
        answers[canary].append(client.ask(conversation, question).text)

    for turn in range(TURNS):  # everyone at once, each turn
        threads = [threading.Thread(target=converse, args=(*person, turn)) for person in people]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    for canary, texts in answers.items():
        assert len(texts) == TURNS
        others = [other for other in answers if other != canary]
        for text in texts:
            assert not any(other in text for other in others), f"{canary}'s conversation got {text!r}"
    reuse = cached_tokens(server)
    print(f"prompt tokens from the cache, per answer: {reuse}")
    # The later turns were written from cached prefixes: the cache was really at work.
    assert sum(tokens > 20 for tokens in reuse) >= PEOPLE * (TURNS - 1) // 2
    echoed = sum(canary in text for canary, texts in answers.items() for text in texts)
    print(f"answers that repeated their own canary: {echoed} of {PEOPLE * TURNS}")
