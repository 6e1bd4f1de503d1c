"""Existing tools work unchanged: the official `openai` Python client, pointed at the real
server (waitress on 127.0.0.1, SmolLM2), streams a chat and gets a whole one, with a key made
on the Settings page."""

import re
import time

import pytest
import requests

from benchmarks.client import ChatClient
from benchmarks.server import LiveServer
from tests.conftest import PASSWORD

openai = pytest.importorskip("openai", reason="the openai client is in requirements-dev.txt")
pytestmark = pytest.mark.model
MODEL = "SmolLM2-135M-Instruct.Q4_1"
PROCEDURE = (
    "# Press 4 safety procedure\n\n"
    "Before any work, the technician locks press 4 with the yellow padlock. "
    "Any accident is reported to the safety office within 48 hours.\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"GENERATION_TEMPERATURE": "0", "GENERATION_SEED": "42"}
    with LiveServer(tmp_path_factory.mktemp("instance"), env=env) as server:
        yield server


@pytest.fixture(scope="module")
def client(server):
    """The openai client with a key alice made on her Settings page."""
    alice = ChatClient(server.base_url)
    assert alice.register("alice", PASSWORD).ok
    page = alice.session.post(
        alice.url("/settings/api-keys"), data={"csrf_token": alice.csrf_token, "name": "openai"}
    )
    key = re.search(r"data-key>(cau_[\w-]+)<", page.text).group(1)
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=key, timeout=120, max_retries=0)


def test_the_openai_client_lists_the_models(client):
    assert MODEL in [model.id for model in client.models.list()]


def test_the_openai_client_streams_a_chat_token_by_token(client):
    started = time.monotonic()
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Say hello in one short sentence."}],
        stream=True,
        max_tokens=40,
    )
    pieces, arrivals, finish = [], [], None
    for chunk in stream:
        choice = chunk.choices[0]
        if choice.delta.content:
            pieces.append(choice.delta.content)
            arrivals.append(time.monotonic() - started)
        finish = choice.finish_reason or finish
    print(f"\n{len(pieces)} pieces, first after {arrivals[0]:.2f} s, last after {arrivals[-1]:.2f} s")
    assert len(pieces) >= 3 and "".join(pieces).strip()
    assert arrivals[-1] > arrivals[0], "the pieces came as they were written, not all at once"
    assert finish in ("stop", "length")


def test_the_openai_client_gets_a_whole_answer_with_its_usage(client):
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "You answer in one word."},
            {"role": "user", "content": "What colour is the sky?"},
        ],
        max_tokens=20,
        temperature=0,
    )
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content.strip()
    assert completion.usage.completion_tokens > 0 and completion.usage.prompt_tokens > 0


def test_the_openai_client_reports_a_bad_key_and_an_unknown_model(client, server):
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="cau_wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError) as error:
        client.chat.completions.create(model="absent", messages=[{"role": "user", "content": "x"}])
    assert "absent" in str(error.value)


def uploaded_document(client, server) -> int:
    """The procedure, uploaded with the client's key through /api/v1/documents."""
    uploaded = requests.post(
        f"{server.base_url}/api/v1/documents",
        headers={"Authorization": f"Bearer {client.api_key}"},
        files={"file": ("presse.md", PROCEDURE.encode(), "text/markdown")},
        timeout=30,
    )
    assert uploaded.status_code == 201, uploaded.text
    return uploaded.json()["document"]["id"]


def test_the_openai_client_gets_an_answer_with_the_passages_it_was_given(client, server):
    """A document uploaded with the key, named in `extra_body`: the answer comes with the
    passages it was sent, in a field of ours the client keeps aside (`model_extra`)."""
    document_id = uploaded_document(client, server)
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Which padlock locks press 4?"}],
        max_tokens=30,
        temperature=0,
        extra_body={"document_ids": [document_id]},
    )
    assert completion.choices[0].message.content.strip()
    [passage] = completion.model_extra["sources"]["passages"]
    assert (passage["n"], passage["name"], passage["document_id"]) == (1, "presse.md", document_id)
    assert "yellow padlock" in passage["text"]
    assert completion.usage.prompt_tokens > 60, "the model read the passage before the question"


def test_the_openai_client_streams_the_passages_before_the_first_word(client, server):
    document_id = uploaded_document(client, server)
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Which padlock locks press 4?"}],
        max_tokens=20,
        stream=True,
        extra_body={"document_ids": [document_id]},
    )
    kinds = []
    for chunk in stream:
        if (chunk.model_extra or {}).get("sources"):
            kinds.append("sources")
            assert "yellow padlock" in chunk.model_extra["sources"]["passages"][0]["text"]
        if chunk.choices and chunk.choices[0].delta.content:
            kinds.append("text")
    assert kinds[0] == "sources" and kinds.count("sources") == 1 and "text" in kinds
