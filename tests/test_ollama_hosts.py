"""Several Ollama hosts with the same model: the least busy one answers, a host that fails loses
no answer, and the admin sees each host's state.

Two real stand-in servers over HTTP, with the scripted model only (no llama.cpp: fast). They
run on 127.0.0.1, so the engines would take them for Ollama on this machine, sharing its
cores; they are treated as remote hosts instead (`local = False`), each with a seat.
"""

import time

import pytest

from app.admin.services import load_preferences
from app.llm import LLMServices
from app.llm.catalogue import Catalogue
from app.llm.engines.ollama import OllamaEngine
from app.llm.scheduler import Failed, Finished, GenerationRequest, Scheduler
from app.llm.types import ENGINE_UNREACHABLE, ChatMessage, EngineError, GenerationOptions, Outcome, Text
from tests.conftest import sse_events
from tests.fakes import ScriptedEngine
from tests.ollama_server import SCRIPTED_ANSWER, OllamaStandIn, default_models
from tests.test_chat_web import new_conversation, send

THINKER = "deepseek-r1:1.5b"  # on both hosts
ONLY_A = "phi3:mini"  # on the first host only
LISTING_SECONDS = 2.0  # how long a listing is trusted: a host stopped meanwhile is found by an answer
RETRY_SECONDS = 2.0  # how long a host that failed is skipped (30 s in production)


def scripted_host(*names: str) -> OllamaStandIn:
    host = OllamaStandIn()
    host.models = {name: default_models()[THINKER] for name in names}
    return host


@pytest.fixture
def hosts():
    first, second = scripted_host(THINKER, ONLY_A), scripted_host(THINKER)
    with first, second:
        yield first, second


@pytest.fixture
def llm_services(hosts) -> LLMServices:
    engines = [
        OllamaEngine(h.url, list_ttl=LISTING_SECONDS, retry_seconds=RETRY_SECONDS, connect_timeout=1.0)
        for h in hosts
    ]
    for engine in engines:
        engine.local = False  # see the module's docstring
    catalogue = Catalogue(engines, THINKER)
    return LLMServices(catalogue, Scheduler(catalogue))


def names(services: LLMServices) -> tuple[str, str]:
    return tuple(engine.name for engine in services.catalogue.engines)


def ask(services: LLMServices, key: int, model: str = THINKER):
    request = GenerationRequest(
        key=str(key),
        user_id=key,
        model_id=model,
        messages=[ChatMessage("user", "Bonjour")],
        options=GenerationOptions(max_tokens=64),
    )
    return services.scheduler.submit(request)


def events(job) -> list:
    return [e for e in job.events(tick=0.05) if e is not None]


def answered(job) -> Finished:
    """The job's end, checked complete with the whole scripted answer, nothing failed."""
    seen = events(job)
    assert not any(isinstance(e, Failed) for e in seen), seen[-1]
    assert isinstance(seen[-1], Finished) and seen[-1].outcome == Outcome.COMPLETE
    assert "".join(e.text for e in seen if isinstance(e, Text)) == "".join(SCRIPTED_ANSWER)
    return seen[-1]


def chats(host: OllamaStandIn) -> int:
    return len(host.bodies("/api/chat"))


def wait_until(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_model_on_two_hosts_is_listed_once_and_names_both(llm_services):
    entries = [e for e in llm_services.catalogue.entries() if e.id == THINKER]
    assert len(entries) == 1 and entries[0].info.hosts == names(llm_services)
    assert llm_services.catalogue.entry(ONLY_A).info.hosts == names(llm_services)[:1]


def test_two_answers_at_once_go_to_the_two_hosts(hosts, llm_services):
    first, second = hosts
    first.load_delay = second.load_delay = 0.5  # both answers are under way at the same time
    jobs = [ask(llm_services, 1), ask(llm_services, 2)]
    busy = {name: (1, 0) for name in names(llm_services)}
    assert wait_until(lambda: llm_services.scheduler.occupancy() == busy)
    ends = [answered(job) for job in jobs]
    assert (chats(first), chats(second)) == (1, 1)
    assert [end.stats.engine for end in ends] == list(names(llm_services))
    assert [end.stats.concurrent for end in ends] == [1, 1]  # each host wrote its own alone
    assert llm_services.scheduler.occupancy() == {}
    # Both idle again: the first host (a tie goes to the first).
    answered(ask(llm_services, 3))
    assert (chats(first), chats(second)) == (2, 1)


def test_a_host_that_goes_down_loses_no_answer_and_shows_down_until_its_retry_time(hosts, llm_services):
    first, second = hosts
    name_a, name_b = names(llm_services)
    assert llm_services.catalogue.entry(THINKER).info.usable  # listed now: the host is trusted a while
    first.stop()
    jobs = [ask(llm_services, key) for key in range(1, 7)]
    for job in jobs:
        assert answered(job).stats.engine == name_b
    assert jobs[0].tried == {name_a, name_b}, "the first answer was sent to the stopped host, then moved"
    assert chats(second) == 6
    status = llm_services.catalogue.engines[0].status()
    assert not status.reachable and status.detail == "connection refused"
    assert time.time() < status.retry_at <= time.time() + RETRY_SECONDS
    assert status.last_error == "connection refused" and status.models == (THINKER, ONLY_A)
    entry = llm_services.catalogue.entry(THINKER)
    assert entry.offered and entry.info.engine == name_b  # still offered, through the other host


def test_a_host_that_failed_is_used_again_after_its_retry_time(hosts, llm_services):
    first, second = hosts
    name_a, name_b = names(llm_services)
    llm_services.catalogue.entries()
    port = first.port
    first.stop()
    assert answered(ask(llm_services, 1)).stats.engine == name_b
    first.start(port)  # back at once, but skipped until its retry time
    assert answered(ask(llm_services, 2)).stats.engine == name_b
    retry_at = llm_services.catalogue.engines[0].status().retry_at
    time.sleep(max(0.0, retry_at - time.time()) + 0.1)
    assert answered(ask(llm_services, 3)).stats.engine == name_a
    assert llm_services.catalogue.engines[0].status().reachable
    assert chats(first) == 1


def test_a_server_error_before_the_first_token_is_answered_by_the_other_host(hosts, llm_services):
    first, second = hosts
    first.fail_with = (500, "llama runner process has terminated: exit status 2")
    job = ask(llm_services, 1)
    assert answered(job).stats.engine == names(llm_services)[1]
    assert (chats(first), chats(second)) == (1, 1)
    # It answered, if badly: not taken for down (a gateway's 502 or a refused connection is).
    assert llm_services.catalogue.engines[0].status().reachable


class CutHost(ScriptedEngine):
    """A host whose connection drops after the first words (as a host that dies mid-answer)."""

    interchangeable = True

    def __init__(self, name: str) -> None:
        super().__init__(model_ids=(THINKER,))
        self.name = name

    def stream_chat(self, model_id, messages, options, cancel):
        self.requests.append(messages)
        yield Text("Bonjour")
        error = EngineError(ENGINE_UNREACHABLE, "connection reset")
        error.retry_elsewhere = error.host_down = True
        raise error


def test_a_failure_after_text_has_streamed_stays_an_error():
    first, second = CutHost("ollama@a:11434"), CutHost("ollama@b:11434")
    catalogue = Catalogue([first, second], THINKER)
    services = LLMServices(catalogue, Scheduler(catalogue))
    seen = events(ask(services, 1))
    assert [e.text for e in seen if isinstance(e, Text)] == ["Bonjour"]  # half an answer cannot be replayed
    assert isinstance(seen[-1], Failed) and seen[-1].error.code == ENGINE_UNREACHABLE
    assert (len(first.requests), len(second.requests)) == (1, 0)


def test_a_model_only_on_a_host_that_is_down_cannot_be_reached(hosts, llm_services):
    first, _ = hosts
    llm_services.catalogue.entries()  # listed while the host was up
    first.stop()
    llm_services.catalogue.engines[0].forget_listing()
    seen = events(ask(llm_services, 1, ONLY_A))
    assert isinstance(seen[-1], Failed) and seen[-1].error.code == ENGINE_UNREACHABLE


# -- through the web ---------------------------------------------------------------------------
@pytest.fixture
def admin(app, auth, llm_services):
    llm_services.catalogue.preferences = load_preferences  # the admin's choices, as in production
    app.extensions["llm"] = llm_services
    auth.register("admin")  # the first account: the admin
    return auth.client


def test_the_admin_sees_each_hosts_state(hosts, llm_services, admin):
    first, _ = hosts
    name_a, name_b = names(llm_services)
    llm_services.catalogue.engines[0].list_models()  # listed while the host was up
    first.stop()
    llm_services.catalogue.engines[0].forget_listing()
    page = admin.get("/admin/models").get_data(as_text=True)
    down = page.split(f'data-engine="{name_a}"')[1].split("</li>")[0]
    up = page.split(f'data-engine="{name_b}"')[1].split("</li>")[0]
    assert 'data-reachable="no"' in down and "connection refused" in down and "asked again at" in down
    assert "Last error" in down and f"{THINKER}, {ONLY_A}" in down
    assert 'data-reachable="yes"' in up and "version 0.12.6" in up and "running: 0, waiting: 0" in up
    assert f"{name_a}, {name_b}" in page.split(f'data-model-id="{THINKER}"')[1].split("</tr>")[0]


def test_a_conversation_whose_only_host_is_down_is_told_it_cannot_be_reached(hosts, admin, llm_services):
    first, _ = hosts
    conversation = new_conversation(admin, model=ONLY_A)
    first.stop()
    llm_services.catalogue.engines[0].forget_listing()
    refused = send(admin, conversation, "Bonjour")
    assert refused.status_code == 503 and "cannot be reached" in refused.json["error"]
    # The model on both hosts still answers, through the other one.
    other = new_conversation(admin, model=THINKER)
    assert sse_events(send(admin, other, "Bonjour").get_data(as_text=True))[-1][0] == "done"


def one_host_with_seats(host: OllamaStandIn, seats: int) -> LLMServices:
    engine = OllamaEngine(host.url, list_ttl=LISTING_SECONDS, parallel=seats)
    engine.local = False  # see the module's docstring
    catalogue = Catalogue([engine], THINKER)
    return LLMServices(catalogue, Scheduler(catalogue))


def test_a_host_declared_with_two_seats_writes_two_answers_at_once(hosts):
    first, _ = hosts
    first.parallel = 2  # its OLLAMA_NUM_PARALLEL
    first.load_delay = 0.3  # both under way at the same time
    services = one_host_with_seats(first, 2)
    for job in [ask(services, 1), ask(services, 2)]:
        answered(job)
    assert first.most_at_once == 2


def test_a_host_declared_with_one_seat_is_sent_one_answer_at_a_time(hosts):
    first, _ = hosts
    first.parallel = 2  # it could take two: the configuration says one
    first.load_delay = 0.3
    services = one_host_with_seats(first, 1)
    jobs = [ask(services, 1), ask(services, 2)]
    for job in jobs:
        answered(job)
    assert first.most_at_once == 1


def test_each_host_takes_its_own_number_of_answers_from_the_configuration(tmp_path):
    from app import create_app
    from config import TestConfig

    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'db.sqlite3'}"
        OLLAMA_HOSTS = ["http://10.0.0.21:11434", "http://10.0.0.22:11434"]
        OLLAMA_PARALLEL = [4, 2]

    engines = create_app(Config).extensions["llm"].catalogue.engines
    assert [e.parallel for e in engines if isinstance(e, OllamaEngine)] == [4, 2]


# -- engine addresses stay on the admin's pages (issue 16, item 16) ------------------------------
@pytest.fixture
def key_holder(app, admin):
    """A user who is not an admin, signed in, with an API key: (browser client, key headers)."""
    from tests.conftest import PASSWORD
    from tests.test_api import bearer, make_key

    user = app.test_client()
    user.post("/register", data={"username": "bob", "password": PASSWORD, "confirm": PASSWORD})
    return user, bearer(make_key(user))


def test_no_output_a_user_or_key_holder_gets_names_an_engines_address(app, hosts, llm_services, key_holder):
    """Every page, JSON, event stream and export a person or a script reaches, after answers
    were written, compared, failed and refused: none says where an engine is (an Ollama host
    takes no password: its address lets anyone bypass every limit here)."""
    from tests.test_chat_web import JSON

    user, key = key_holder
    first, second = hosts
    addresses = [f"127.0.0.1:{h.port}" for h in hosts]
    outputs: dict[str, str] = {}

    def got(label: str, response) -> None:
        outputs[label] = response.get_data(as_text=True)

    conversation = new_conversation(user, model=ONLY_A)
    got("chat stream", send(user, conversation, "Bonjour"))
    message_id = next(
        m["id"] for m in user.get(f"/conversations/{conversation}/messages").json["messages"][::-1]
    )
    for path in (
        "/",
        f"/c/{conversation}",
        "/models",
        "/conversations",
        f"/conversations/{conversation}/messages",
        f"/conversations/{conversation}/export.md",
        f"/conversations/{conversation}/export.json",
        f"/messages/{message_id}/events",
        "/search?q=Bonjour",
        "/compare",
        f"/compare/plan?a={THINKER}&b={ONLY_A}",
        "/settings",
    ):
        got(path, user.get(path, headers=JSON if path.startswith("/conversations") else None))
    for model in (THINKER, ONLY_A):
        got(f"compare {model}", user.post("/compare/answers", data={"prompt": "Bonjour", "model": model}))
    chat = {"model": THINKER, "messages": [{"role": "user", "content": "Bonjour"}]}
    api = app.test_client(use_cookies=False)
    for path in (
        "/api/v1/models",
        "/api/v1/health",
        "/api/v1/conversations",
        "/v1/models",
        "/api/v1/openapi.json",
    ):
        got(path, api.get(path, headers=key))
    got("api conversation", api.get(f"/api/v1/conversations/{conversation}", headers=key))
    got("api generate", api.post("/api/v1/generate", json=chat, headers=key))
    got("api generate stream", api.post("/api/v1/generate", json={**chat, "stream": True}, headers=key))
    got("api compare", api.post("/api/v1/compare", json={**chat, "models": [THINKER, ONLY_A]}, headers=key))
    got("openai", api.post("/v1/chat/completions", json=chat, headers=key))
    got("openai stream", api.post("/v1/chat/completions", json={**chat, "stream": True}, headers=key))
    # Failures: an engine's error, then its host gone.
    first.fail_with = second.fail_with = (500, f"runner crashed on {addresses[0]}")
    got("failed answer", send(user, conversation, "Encore"))
    got("failed api", api.post("/api/v1/generate", json=chat, headers=key))
    first.stop()
    llm_services.catalogue.engines[0].forget_listing()
    got("host gone", send(user, conversation, "Encore"))
    got("host gone, api", api.post("/api/v1/generate", json={**chat, "model": ONLY_A}, headers=key))
    got("page after", user.get(f"/c/{conversation}"))
    # What says a host is down, to a person, a script and a monitor.
    got("models, host gone", user.get("/models"))
    got("health, host gone", api.get("/api/v1/health", headers=key))
    got("api models, host gone", api.get("/api/v1/models", headers=key))
    got("healthz", app.test_client(use_cookies=False).get("/healthz"))

    assert '"done"' in outputs["chat stream"] or "event: done" in outputs["chat stream"]
    assert len(outputs) >= 34
    leaks = {label: address for label, body in outputs.items() for address in addresses if address in body}
    assert leaks == {}, f"an engine's address reached a user: {leaks}"
