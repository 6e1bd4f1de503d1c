"""The API for scripts (`/api/v1`) and its OpenAI-compatible twin (`/v1`), over the web layer
with a scripted engine: keys, ownership, limits, and the description against the routes."""

import re

import pytest
import sqlalchemy as sa

from app.api.openapi import SPEC
from app.extensions import db
from app.llm.types import ANSWER_MAX_CHARS
from app.models import ApiKey, Generation, Message, User
from tests.conftest import sse_events
from tests.test_chat_web import new_conversation, send

KEY_ON_PAGE = re.compile(r"data-key>(cau_[A-Za-z0-9_-]+)<")


def make_key(client, name: str = "carnet") -> str:
    """A key made through the Settings page's form, read from the page that shows it once."""
    page = client.post("/settings/api-keys", data={"name": name})
    assert page.status_code == 200, page.data
    return KEY_ON_PAGE.search(page.get_data(as_text=True)).group(1)


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def key(signed_in) -> str:
    return make_key(signed_in)


@pytest.fixture
def api(app, key):
    """A client with no session cookie at all: a script holding a key."""
    client = app.test_client(use_cookies=False)
    client.key = key
    return client


def get(api, path):
    return api.get(path, headers=bearer(api.key))


def post(api, path, body):
    return api.post(path, json=body, headers=bearer(api.key))


def test_a_key_is_shown_once_and_only_its_digest_is_stored(app, signed_in, key):
    assert key.startswith("cau_") and len(key) > 40
    with app.app_context():
        stored = db.session.scalar(sa.select(ApiKey))
        assert stored.digest != key and key not in (stored.prefix, stored.name) and len(stored.prefix) < 12
    page = signed_in.get("/settings").get_data(as_text=True)
    assert key not in page and stored.prefix in page and "carnet" in page


def test_a_key_needs_a_name_of_1_to_100_characters(signed_in):
    for name in ("", "   ", "x" * 101):
        page = signed_in.post("/settings/api-keys", data={"name": name})
        assert page.status_code == 400
        assert "A key&#39;s name has 1 to 100 characters." in page.get_data(as_text=True)


def test_without_a_valid_key_every_api_route_answers_401_even_to_a_signed_in_browser(app, signed_in, key):
    """The session cookie is never enough: a page of another site cannot use a signed-in browser."""
    paths = [
        ("GET", "/api/v1/models"),
        ("GET", "/api/v1/health"),
        ("POST", "/api/v1/generate"),
        ("POST", "/api/v1/compare"),
        ("GET", "/api/v1/conversations"),
        ("GET", "/api/v1/conversations/1"),
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
    ]
    for method, path in paths:
        for headers in ({}, bearer("cau_not-a-key"), {"Authorization": f"Basic {key}"}):
            response = signed_in.open(path, method=method, json={}, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert signed_in.get("/api/v1/models").json["error"].startswith("A valid API key is needed")
    assert signed_in.get("/v1/models").json["error"]["code"] == "invalid_api_key"


def test_a_revoked_key_or_a_disabled_account_stops_working_at_once(app, signed_in, api):
    assert get(api, "/api/v1/models").status_code == 200
    with app.app_context():
        key_id = db.session.scalar(sa.select(ApiKey.id))
    assert signed_in.post(f"/settings/api-keys/{key_id}/revoke").status_code == 302
    assert get(api, "/api/v1/models").status_code == 401
    assert "carnet" not in signed_in.get("/settings").get_data(as_text=True).split('id="api-keys"')[1]

    api.key = make_key(signed_in, "second")
    assert get(api, "/api/v1/models").status_code == 200
    with app.app_context():
        db.session.execute(sa.update(User).values(disabled=True))
        db.session.commit()
    assert get(api, "/api/v1/models").status_code == 401


def test_another_users_key_cannot_be_revoked(app, signed_in, auth, client, api):
    with app.app_context():
        key_id = db.session.scalar(sa.select(ApiKey.id))
    auth.logout()
    auth.register("bob", "un autre mot de passe long")
    auth.login("bob", "un autre mot de passe long")
    assert client.post(f"/settings/api-keys/{key_id}/revoke").status_code == 404
    assert get(api, "/api/v1/models").status_code == 200


def test_api_posts_need_no_csrf_token_but_the_key_forms_do(app, signed_in, api):
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        assert post(api, "/api/v1/generate", {"model": "tiny", "prompt": "Bonjour"}).status_code == 200
        assert signed_in.post("/settings/api-keys", data={"name": "sans jeton"}).status_code == 400
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


def test_models_and_health(api):
    models = get(api, "/api/v1/models").json
    assert models["default"] and models["default"] in [m["id"] for m in models["models"]]
    health = get(api, "/api/v1/health").json
    assert health["ok"] is True and health["engines"] and health["answers_under_way"] == 0


def test_generate_answers_whole_or_streamed_and_is_measured_for_the_dashboard(app, api):
    whole = post(api, "/api/v1/generate", {"model": "tiny", "prompt": "Dis bonjour"})
    assert whole.status_code == 200
    assert whole.json["text"] == "Bonjour le monde." and whole.json["outcome"] == "complete"
    assert whole.json["stats"]["completion_tokens"] == 4
    streamed = post(api, "/api/v1/generate", {"model": "tiny", "prompt": "Dis bonjour", "stream": True})
    assert streamed.mimetype == "text/event-stream"
    events = sse_events(streamed.get_data(as_text=True))
    assert "".join(d["text"] for name, d in events if name == "token") == "Bonjour le monde."
    assert events[-1][0] == "done"
    with app.app_context():
        records = db.session.scalars(sa.select(Generation)).all()
        assert len(records) == 2 and all(r.message_id is None and r.user_id == 1 for r in records)


def test_generate_sends_the_callers_messages_and_sampling_within_the_admins_limit(app, api, engine):
    app.config["MAX_ANSWER_TOKENS"] = 300
    body = {
        "model": "tiny",
        "messages": [{"role": "system", "content": "Sois bref."}, {"role": "user", "content": "Salut"}],
        "temperature": 0.2,
        "max_tokens": 100,
    }
    assert post(api, "/api/v1/generate", body).status_code == 200
    assert [(m.role, m.content) for m in engine.requests[-1]] == [("system", "Sois bref."), ("user", "Salut")]
    assert (engine.options[-1].temperature, engine.options[-1].max_tokens) == (0.2, 100)
    too_long = post(api, "/api/v1/generate", {**body, "max_tokens": 5000})
    assert too_long.status_code == 400
    assert too_long.json["error"] == "Longest answer (tokens) must be between 16 and 300."


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"prompt": "x"}, 400, "Pick a model."),
        ({"model": "absent", "prompt": "x"}, 404, "The model “absent” is not available. Pick another model."),
        ({"model": "tiny"}, 400, "Write a message first."),
        ({"model": "tiny", "messages": "Bonjour"}, 400, "“messages” is a list of {role, content}."),
        (
            {"model": "tiny", "messages": [{"role": "robot", "content": "x"}]},
            400,
            "“messages” is a list of {role, content}.",
        ),
        (
            {"model": "tiny", "messages": [{"role": "assistant", "content": "x"}]},
            400,
            "The last message must be the user's.",
        ),
        (
            {"model": "tiny", "prompt": "x" * 20001},
            400,
            "This message is too long (20000 characters at most).",
        ),
        ({"model": "tiny", "prompt": "x", "temperature": "chaud"}, 400, "Temperature must be a number."),
        ({"model": "tiny", "prompt": "x", "seed": 1.5}, 400, "“seed” is a whole number."),
    ],
)
def test_a_bad_request_is_refused_with_a_message_saying_why(api, body, status, message):
    response = post(api, "/api/v1/generate", body)
    assert (response.status_code, response.json["error"]) == (status, message)
    if body.keys() == {"model"}:
        return  # OpenAI's shape always carries messages
    prompt = body.get("prompt", "x")
    openai = post(api, "/v1/chat/completions", {"messages": [{"role": "user", "content": prompt}], **body})
    assert openai.status_code == status and openai.json["error"]["message"] == message


def test_a_full_queue_answers_503_with_retry_after(app, api):
    app.extensions["llm"].scheduler.max_answers = 1
    assert app.extensions["llm"].scheduler.reserve(99) is None  # someone else holds the only place
    response = post(api, "/api/v1/generate", {"model": "tiny", "prompt": "x"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert (
        post(
            api, "/v1/chat/completions", {"model": "tiny", "messages": [{"role": "user", "content": "x"}]}
        ).status_code
        == 503
    )


def test_compare_answers_each_model_with_its_timings(api):
    response = post(api, "/api/v1/compare", {"models": ["tiny", "other"], "prompt": "Dis bonjour"})
    assert response.status_code == 200
    answers = response.json["answers"]
    assert [a["model"] for a in answers] == ["tiny", "other"]
    assert all(a["text"] == "Bonjour le monde." and a["stats"]["completion_tokens"] == 4 for a in answers)
    for answer in answers:  # when each began and ended, counted from the request's arrival
        timings = answer["timings"]
        assert 0 <= timings["first_token_seconds"] <= timings["total_seconds"]
    for models in ([], ["tiny"] * 5, "tiny"):
        assert post(api, "/api/v1/compare", {"models": models, "prompt": "x"}).status_code == 400


def test_conversations_are_the_key_owners_only(app, signed_in, auth, client, api):
    conversation_id = new_conversation(signed_in)
    send(signed_in, conversation_id, "Dis bonjour").get_data()
    listed = get(api, "/api/v1/conversations").json["conversations"]
    assert [c["id"] for c in listed] == [conversation_id]
    read = get(api, f"/api/v1/conversations/{conversation_id}").json
    assert [m["content"] for m in read["messages"]] == ["Dis bonjour", "Bonjour le monde."]
    assert read["thread"] == [m["id"] for m in read["messages"]]
    auth.logout()
    auth.register("bob", "un autre mot de passe long")
    auth.login("bob", "un autre mot de passe long")
    bob = app.test_client(use_cookies=False)
    bob.key = make_key(client)
    assert get(bob, f"/api/v1/conversations/{conversation_id}").status_code == 404
    assert get(bob, "/api/v1/conversations").json["conversations"] == []


def test_openai_shaped_models_and_completion(api):
    models = get(api, "/v1/models").json
    assert models["object"] == "list" and {"tiny", "other"} <= {m["id"] for m in models["data"]}
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Dis bonjour"}]}
    completion = post(api, "/v1/chat/completions", body).json
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"] == {"role": "assistant", "content": "Bonjour le monde."}
    assert (
        completion["choices"][0]["finish_reason"] == "stop" and completion["usage"]["completion_tokens"] == 4
    )
    streamed = post(api, "/v1/chat/completions", {**body, "stream": True}).get_data(as_text=True)
    chunks = [line[6:] for line in streamed.splitlines() if line.startswith("data: ")]
    assert chunks[-1] == "[DONE]"
    assert '"role": "assistant"' in chunks[0] and '"finish_reason": "stop"' in chunks[-2]


def test_the_openapi_description_lists_exactly_the_routes_and_their_methods(app):
    served = app.test_client().get("/api/v1/openapi.json")
    assert served.status_code == 200 and served.json == SPEC  # no key needed to read it
    routes = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api/v1/", "/v1/")):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            routes.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    described = {path: set(methods) for path, methods in SPEC["paths"].items()}
    assert described == routes


def test_openai_lengths_out_of_bounds_are_brought_within_them_not_refused(app, api, engine):
    """Tools send 4096, or 1 to check a connection, without asking what a server allows."""
    app.config["MAX_ANSWER_TOKENS"] = 300
    for asked, sent in [(4096, 300), (1, 16), (100, 100)]:
        body = {"model": "tiny", "messages": [{"role": "user", "content": "x"}], "max_tokens": asked}
        assert post(api, "/v1/chat/completions", body).status_code == 200
        assert engine.options[-1].max_tokens == sent


def test_a_runaway_answer_is_stored_cut_at_its_bound_with_a_clear_error(app, signed_in, engine):
    engine.words = ["x" * 100_000] * 100  # a 10 MB answer
    conversation_id = new_conversation(signed_in)
    events = sse_events(send(signed_in, conversation_id, "Écris sans fin").get_data(as_text=True))
    name, data = events[-1]
    assert name == "error" and "passed 500,000 characters" in data["message"]
    with app.app_context():
        stored = db.session.get(Message, data["message_id"])
        assert stored.state == "error" and len(stored.content) == ANSWER_MAX_CHARS
