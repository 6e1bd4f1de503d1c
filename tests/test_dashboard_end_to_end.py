"""After a few chats with two models, the admin sees both side by side, and can download them.

The real server, the embedded SmolLM2 and the Ollama stand-in's model, real answers.
"""

import csv
import io

import pytest

from benchmarks.client import ChatClient
from benchmarks.server import LiveServer
from tests.conftest import PASSWORD

pytestmark = pytest.mark.model
EMBEDDED, OLLAMA = "SmolLM2-135M-Instruct.Q4_1", "smollm2:135m"


@pytest.fixture(scope="module")
def server(tmp_path_factory, ollama_host):
    env = {"OLLAMA_HOSTS": ollama_host.url, "MAX_ANSWER_TOKENS": "32", "DEFAULT_LANGUAGE": "en"}
    with LiveServer(tmp_path_factory.mktemp("instance"), env=env) as server:
        yield server


def test_the_admin_sees_two_models_side_by_side_and_downloads_their_records(server, standin):
    admin = ChatClient(server.base_url)
    assert admin.register("admin", PASSWORD).ok
    for model in (EMBEDDED, OLLAMA):
        conversation = admin.create_conversation(model)
        for question in ("Bonjour !", "Name three colours."):
            assert admin.ask(conversation, question).end.data["state"] == "complete"
    page = admin.session.get(admin.url("/admin/dashboard?period=24h")).text
    for model in (EMBEDDED, OLLAMA):
        row = page.split(f'data-model-id="{model}"')[1].split("</tr>")[0]
        assert ">2<" in row and " s / " in row  # two answers, first-token and total percentiles
    embedded_row = page.split(f'data-model-id="{EMBEDDED}"')[1].split("</tr>")[0]
    assert " GB" in embedded_row and "%" in embedded_row  # measured in this very process
    assert page.count("<svg") >= 4
    download = admin.session.get(admin.url("/admin/dashboard.csv?period=24h"))
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert sorted(r["model"] for r in rows) == sorted([EMBEDDED] * 2 + [OLLAMA] * 2)
    embedded = [r for r in rows if r["model"] == EMBEDDED]
    assert all(float(r["process_cpu_seconds"]) > 0 and float(r["first_token_seconds"]) > 0 for r in embedded)
