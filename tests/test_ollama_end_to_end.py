"""With an Ollama host configured: the real server (waitress on 127.0.0.1) against the stand-in.

Its models appear beside the embedded ones; the admin's changes apply to the very next
message; a reasoning model's thinking is kept apart; and every failure of the host becomes a
clear message while the app keeps answering.
"""

import time

import pytest

from benchmarks.client import ChatClient
from benchmarks.server import LiveServer
from tests.conftest import PASSWORD
from tests.ollama_server import SCRIPTED_ANSWER, SCRIPTED_THINKING

pytestmark = pytest.mark.model
EMBEDDED, SMOLLM2, THINKER = "SmolLM2-135M-Instruct.Q4_1", "smollm2:135m", "deepseek-r1:1.5b"


LISTING_SECONDS = 0.5  # how old the app's listing of a host may be


@pytest.fixture(scope="module")
def second_host():
    """Another Ollama host (scripted models only), for the test that takes it down."""
    from tests.ollama_server import OllamaStandIn

    host = OllamaStandIn()
    host.models = {"phi3:mini": host.models.pop(THINKER)}
    with host:
        yield host


@pytest.fixture(scope="module")
def server(tmp_path_factory, ollama_host, second_host):
    env = {
        "OLLAMA_HOSTS": f"{ollama_host.url},{second_host.url}",
        "OLLAMA_LIST_SECONDS": str(LISTING_SECONDS),
        "OLLAMA_STALL_TIMEOUT": "2",
        "OLLAMA_LOAD_TIMEOUT": "2",
        "OLLAMA_FIRST_TOKEN_TIMEOUT": "5",
        "MAX_ANSWER_TOKENS": "24",
        "DEFAULT_LANGUAGE": "en",  # the messages asserted below are the English ones
    }
    with LiveServer(tmp_path_factory.mktemp("instance"), env=env) as server:
        yield server


@pytest.fixture(scope="module")
def admin(server) -> ChatClient:
    client = ChatClient(server.base_url, timeout=30)
    assert client.register("admin", PASSWORD).ok  # the first account: the admin
    return client


@pytest.fixture(scope="module")
def user(server, admin) -> ChatClient:
    client = ChatClient(server.base_url, timeout=30)
    assert client.register("alice", PASSWORD).ok
    return client


@pytest.fixture
def host(standin, server):
    """The stand-in, reset; reset again afterwards, and the app's listing of it renewed."""
    yield standin
    standin.reset()
    time.sleep(LISTING_SECONDS)


def admin_post(admin: ChatClient, path: str, **form):
    response = admin.session.post(
        admin.url(path), data=form, headers={"X-CSRFToken": admin.csrf_token}, allow_redirects=False
    )
    assert response.status_code == 302, response.text[:300]


def offered(client: ChatClient) -> dict:
    return client.session.get(client.url("/models")).json()


def ask(client: ChatClient, model: str, text: str = "Bonjour"):
    return client.ask(client.create_conversation(model), text)


def test_the_hosts_models_appear_beside_the_embedded_ones(admin, user, host):
    models = {m["id"]: m for m in offered(user)["models"]}
    assert {EMBEDDED, SMOLLM2, THINKER} <= set(models)
    assert not any("engine" in model for model in models.values())  # where it runs is the admin's
    page = admin.session.get(admin.url("/admin/models")).text
    assert f"ollama@{host.url.removeprefix('http://')}" in page and "llama-server" in page
    assert models[THINKER]["thinking"] and not models[SMOLLM2]["thinking"]
    answer = ask(user, SMOLLM2)
    assert answer.end.name == "done" and answer.text.strip()
    assert answer.end.data["stats"]["completion_tokens"] > 0  # the host's own count, as the reader gets it


def test_the_admin_disables_one_changes_the_default_and_a_temperature_and_the_next_message_obeys(
    admin, user, host
):
    admin_post(admin, "/admin/models/enabled", model=THINKER, enabled="0")
    admin_post(admin, "/admin/models/default", model=SMOLLM2)
    admin_post(
        admin, "/admin/models/settings?model=" + SMOLLM2, model=SMOLLM2, enabled="y", temperature="0.25"
    )
    try:
        now_offered = offered(user)
        assert THINKER not in {m["id"] for m in now_offered["models"]} and now_offered["default"] == SMOLLM2
        conversation = user.create_conversation()  # no model named: the new default, no restart
        history = user.session.get(user.url(f"/conversations/{conversation}/messages")).json()
        assert history["conversation"]["model"] == SMOLLM2
        assert user.ask(conversation, "Bonjour").end.name == "done"
        assert host.bodies("/api/chat")[-1]["options"]["temperature"] == 0.25
    finally:
        admin_post(admin, "/admin/models/enabled", model=THINKER, enabled="1")
        admin_post(admin, "/admin/models/default", model=EMBEDDED)
        admin_post(admin, "/admin/models/settings?model=" + SMOLLM2, model=SMOLLM2, enabled="y")


def test_a_reasoning_models_thinking_streams_apart_and_is_stored_apart(user, host):
    conversation = user.create_conversation(THINKER)
    answer = user.ask(conversation, "Une réponse courte ?")
    thinking = "".join(e.data["text"] for e in answer.events if e.name == "thinking")
    assert thinking == "".join(SCRIPTED_THINKING) and answer.text == "".join(SCRIPTED_ANSWER)
    phases = [e.data["phase"] for e in answer.events if e.name == "status"]
    assert phases[:1] == ["loading"] and "thinking" in phases
    stats = answer.end.data["stats"]
    assert 0 < stats["first_token_seconds"] < stats["first_answer_seconds"]
    stored = user.messages(conversation)[-1]
    assert (stored["thinking"], stored["content"]) == ("".join(SCRIPTED_THINKING), "".join(SCRIPTED_ANSWER))


def error_of(answer) -> str:
    assert answer.end.name == "error", answer.events
    return answer.end.data["message"]


def test_a_full_ollama_queue_is_told_plainly_and_the_next_message_works(user, host):
    host.busy = True
    assert "busy with other requests" in error_of(ask(user, SMOLLM2))
    host.busy = False
    assert ask(user, SMOLLM2).end.name == "done"


def test_a_stalled_stream_keeps_what_was_written_and_says_why(user, host):
    host.stall_after = 3
    conversation = user.create_conversation(THINKER)
    started = time.perf_counter()
    answer = user.ask(conversation, "Bonjour")
    print(f"stall reported after {time.perf_counter() - started:.2f} s (timeout 2 s)")
    assert "stopped sending its answer" in error_of(answer)
    stored = user.messages(conversation)[-1]
    assert stored["state"] == "error" and stored["thinking"], "what streamed before the stall is kept"
    host.stall_after = None
    assert ask(user, THINKER).end.name == "done"


def test_a_long_load_shows_loading_at_once_and_only_the_load_timeout_ends_it(user, host):
    host.load_delay = 4
    stream = user.stream_answer(user.create_conversation(THINKER), "Bonjour")
    answer = next(stream)
    first = next(e for e in stream if e.name == "status")
    print(f"'loading' shown {first.at - answer.sent_at:.2f} s after sending")
    # "Within seconds": one second is the rule here, with a 3x margin for a noisy machine.
    assert first.data["phase"] == "loading" and first.at - answer.sent_at < 1.0 * 3
    for _ in stream:
        pass
    assert "did not finish loading within 2 seconds" in error_of(answer)
    host.load_delay = 0
    time.sleep(2.5)  # the stand-in finishes the abandoned load
    assert ask(user, THINKER).end.name == "done"


def test_a_model_gone_from_its_host_is_unavailable_and_its_conversation_stays_readable(user, host):
    conversation = user.create_conversation(THINKER)
    user.ask(conversation, "Bonjour")
    del host.models[THINKER]
    time.sleep(LISTING_SECONDS + 0.1)
    refused = user.post_json(f"/conversations/{conversation}/messages", {"content": "Encore"})
    assert refused.status_code == 409 and "is not available" in refused.json()["error"]
    page = user.session.get(user.url(f"/c/{conversation}")).text
    assert "".join(SCRIPTED_ANSWER) in page and "data-model-unavailable" in page


def test_a_host_that_goes_down_is_named_as_such_and_its_conversations_stay_readable(user, second_host):
    conversation = user.create_conversation("phi3:mini")
    assert user.ask(conversation, "Bonjour").end.name == "done"
    second_host.stop()
    time.sleep(LISTING_SECONDS + 0.1)
    refused = user.post_json(f"/conversations/{conversation}/messages", {"content": "Encore"})
    assert refused.status_code == 503 and "cannot be reached" in refused.json()["error"]
    page = user.session.get(user.url(f"/c/{conversation}")).text
    assert "".join(SCRIPTED_ANSWER) in page and "cannot be reached right now" in page
    assert ask(user, EMBEDDED).end.name == "done"  # the other engines go on
