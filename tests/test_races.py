"""Races, on the real server with the real model: many requests at the same instant never make
two answers in one conversation, and a conversation deleted mid-answer never lends its answer
to anyone else (ids that SQLite hands out again included). And with registration closed, sign-ups
racing for the first account make exactly one (SQLite, and PostgreSQL with TEST_DATABASE_URL)."""

import threading

import pytest
import sqlalchemy as sa

from benchmarks.client import CSRF_INPUT, ChatClient, RefusedError
from benchmarks.server import LiveServer
from tests.conftest import PASSWORD

ROUNDS = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"GENERATION_TEMPERATURE": "0", "MAX_ANSWER_TOKENS": "400", "MAX_ANSWERS_PER_USER": "40"}
    with LiveServer(tmp_path_factory.mktemp("instance"), env=env) as server:
        yield server


def signed_in(server, name: str, register: bool = False) -> ChatClient:
    client = ChatClient(server.base_url)
    assert (client.register(name, PASSWORD) if register else client.login(name, PASSWORD)).ok
    return client


def at_once(actions) -> list:
    """Run the actions in threads released at the same instant; their results, in order."""
    results = [None] * len(actions)
    start = threading.Barrier(len(actions))

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = actions[index]()
        except Exception as exc:  # noqa: BLE001 - the refusal is the result
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def answers_of(client: ChatClient, conversation_id: int) -> list[dict]:
    return [m for m in client.messages(conversation_id) if m["role"] == "assistant"]


@pytest.mark.model
def test_twenty_sends_at_the_same_instant_start_exactly_one_answer(server):
    owner = signed_in(server, "ines", register=True)
    conversation_id = owner.create_conversation()
    tabs = [signed_in(server, "ines") for _ in range(20)]  # twenty tabs of the same person
    story = "Write a long story about a lighthouse keeper."  # still being written when the others come
    results = at_once([lambda tab=tab: tab.ask(conversation_id, story) for tab in tabs])
    accepted = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, RefusedError)]
    assert len(accepted) == 1 and len(refused) == 19, results
    assert {r.status for r in refused} == {409}
    assert len(answers_of(owner, conversation_id)) == 1


@pytest.mark.model
def test_regenerate_and_edit_at_the_same_instant_start_exactly_one_answer(server):
    owner = signed_in(server, "jules", register=True)
    conversation_id = owner.create_conversation()
    first = owner.ask(conversation_id, "Write a long story about a dragon.")  # long: both meet it
    question_id = first.message_id - 1
    other = signed_in(server, "jules")

    def regenerate():
        return owner.post_json(f"/messages/{first.message_id}/regenerate", {}, stream=True).status_code

    def edit():
        body = {"content": "Write a long poem."}
        return other.post_json(f"/messages/{question_id}/edit", body, stream=True).status_code

    for _ in range(10):
        statuses = at_once([regenerate, edit])  # the headers only: the answer is still being written
        assert sorted(statuses) == [200, 409], statuses
        writing = [a for a in answers_of(owner, conversation_id) if a["state"] == "generating"]
        assert len(writing) == 1
        owner.post_json(f"/messages/{writing[0]['id']}/stop", {})
        owner.follow(writing[0]["id"])  # to its end


@pytest.mark.model
def test_deleting_a_conversation_mid_answer_lends_its_answer_to_nobody(server):
    alice = signed_in(server, "alice", register=True)
    bob = signed_in(server, "bob", register=True)
    reused = 0
    for _ in range(ROUNDS):
        doomed = alice.create_conversation()
        stream = alice.stream_answer(doomed, "Write a long story about a dragon.")
        deleted = next(stream)
        next(e for e in stream if e.name == "token")
        assert alice.post_json(f"/conversations/{doomed}/delete", {}).ok
        for _event in stream:  # the deleted answer's stream ends
            pass
        mine = bob.create_conversation()
        stream = bob.stream_answer(mine, "Write a long poem about the sea.")
        answer = next(stream)
        next(e for e in stream if e.name in ("token", "done", "error"))
        # A second message while it is written: refused, whatever id the first one got.
        with pytest.raises(RefusedError) as busy:
            bob.ask(mine, "And another.")
        assert busy.value.status == 409
        assert bob.post_json(f"/messages/{answer.message_id}/stop", {}).json() == {"stopped": True}
        for _event in stream:
            pass
        assert answer.end.name == "done" and answer.end.data["message_id"] == answer.message_id
        assert answer.end.data["state"] in ("stopped", "complete")
        stored = answers_of(bob, mine)[-1]
        assert stored["content"] == answer.text, "only its own text, stored as streamed"
        reused += deleted.message_id == answer.message_id
    print(f"{reused} of {ROUNDS} rounds gave Bob's answer the id of Alice's deleted one")


def sign_up_form(client: ChatClient, username: str):
    """The sign-up page opened (while no account exists), and a function that sends it."""
    token = CSRF_INPUT.search(client.session.get(client.url("/register"), timeout=client.timeout).text)
    data = {"csrf_token": token.group(1) or token.group(2), "username": username}
    data.update(password=PASSWORD, confirm=PASSWORD)

    def send() -> int:
        url = client.url("/register")
        return client.session.post(url, data=data, timeout=client.timeout, allow_redirects=False).status_code

    return send


def test_twenty_sign_ups_racing_on_an_empty_closed_server_make_exactly_one_account(database_url, tmp_path):
    """REGISTRATION_MODE=closed still lets the first account be made: whoever comes first, and
    no one else however close behind."""
    env = {
        "DATABASE_URL": database_url,
        "REGISTRATION_MODE": "closed",
        "REGISTRATIONS_PER_HOUR": "100",  # all from one address: not what this test is about
        "PASSWORD_HASH_WAIT_SECONDS": "300",  # hashed two at a time however slow the machine
    }
    with LiveServer(tmp_path / "instance", env=env) as server:
        forms = [sign_up_form(ChatClient(server.base_url, timeout=300), f"user{n:02d}") for n in range(20)]
        statuses = sorted(at_once(forms))
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        accounts = connection.execute(sa.text('SELECT username, is_admin FROM "user"')).all()
    engine.dispose()
    assert len(accounts) == 1 and accounts[0].is_admin, accounts
    assert statuses == [302] + [403] * 19, statuses
