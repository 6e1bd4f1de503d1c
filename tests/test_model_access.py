"""Who may use which model (issue 18, item 2): a model some group lists is for its members and
the admins; a model no group lists is for everyone; collections read through a group."""

from __future__ import annotations

import html
import io
import re
from dataclasses import replace

import pytest

from app.accounts.access import groups_of, may_use_model, usable_models
from app.extensions import db
from app.llm.types import Outcome
from app.models import (
    BenchmarkRun,
    Collection,
    CollectionGroup,
    Conversation,
    Document,
    Group,
    GroupMember,
    GroupModel,
    Message,
    Preset,
    User,
)
from tests.conftest import AuthActions, sse_events
from tests.url_map import sweep

JSON = {"Accept": "application/json"}


def signed_in_as(app, username: str):
    client = app.test_client()
    assert AuthActions(client).register(username).status_code == 302
    return client


def user(username: str) -> User:
    return db.session.scalar(db.select(User).where(User.username == username))


def make_group(app, name: str, *, models=(), members=(), collections=()) -> int:
    with app.app_context():
        group = Group(name=name)
        db.session.add(group)
        db.session.flush()
        db.session.add_all(GroupModel(group_id=group.id, model_id=m) for m in models)
        db.session.add_all(GroupMember(group_id=group.id, user_id=user(u).id) for u in members)
        db.session.add_all(CollectionGroup(group_id=group.id, collection_id=c) for c in collections)
        db.session.commit()
        return group.id


@pytest.fixture
def people(app, signed_in):
    """admin (alice), bob and carol."""
    return signed_in, signed_in_as(app, "bob"), signed_in_as(app, "carol")


# -- the rule ---------------------------------------------------------------------------------
def test_a_model_no_group_lists_is_usable_by_everyone(app, people):
    make_group(app, "Juristes", models=["big"], members=["bob"])
    with app.app_context():
        assert may_use_model(user("carol"), "tiny")
        assert may_use_model(user("bob"), "tiny")


def test_a_model_a_group_lists_is_usable_by_its_members_only(app, people):
    make_group(app, "Juristes", models=["big"], members=["bob"])
    with app.app_context():
        assert may_use_model(user("bob"), "big")
        assert not may_use_model(user("carol"), "big")
        assert usable_models(user("bob")) == {"big"}
        assert usable_models(user("carol")) == set()


def test_an_admin_may_use_every_model_whatever_the_groups(app, people):
    make_group(app, "Juristes", models=["big"], members=["bob"])
    with app.app_context():
        assert may_use_model(user("alice"), "big")
        assert usable_models(user("alice")) is None


def test_a_model_listed_by_two_groups_is_usable_by_the_members_of_either(app, people):
    make_group(app, "Juristes", models=["big"], members=["bob"])
    make_group(app, "Compta", models=["big"], members=["carol"])
    with app.app_context():
        assert may_use_model(user("bob"), "big") and may_use_model(user("carol"), "big")


def test_groups_of_lists_a_persons_groups_by_name(app, people):
    make_group(app, "Juristes", members=["bob"])
    make_group(app, "Atelier", members=["bob"])
    make_group(app, "Compta", members=["carol"])
    with app.app_context():
        assert [g.name for g in groups_of(user("bob"))] == ["Atelier", "Juristes"]


# -- collections through a group --------------------------------------------------------------
def test_a_member_of_a_group_reads_a_collection_named_for_that_group(app, people):
    admin, bob, carol = people
    created = admin.post("/knowledge/new", data={"name": "RH", "access": "listed", "readers": "alice"})
    assert created.status_code == 302
    with app.app_context():
        cid = db.session.scalar(db.select(Collection.id).where(Collection.name == "RH"))
    admin.post(
        f"/knowledge/{cid}/documents",
        data={"files": [(io.BytesIO(b"# Paie\n\nLe 25 du mois."), "paie.md")]},
        content_type="multipart/form-data",
    )
    with app.app_context():
        document_id = db.session.scalar(db.select(Document.id).where(Document.collection_id == cid))
    make_group(app, "Paie", members=["bob"], collections=[cid])
    assert 'data-collection-option="RH"' in bob.get("/").get_data(as_text=True)
    assert bob.get(f"/documents/{document_id}", headers=JSON).status_code == 200


def test_someone_outside_the_collections_groups_does_not_read_it(app, people):
    admin, bob, carol = people
    admin.post("/knowledge/new", data={"name": "RH", "access": "listed", "readers": "alice"})
    with app.app_context():
        cid = db.session.scalar(db.select(Collection.id).where(Collection.name == "RH"))
    make_group(app, "Paie", members=["bob"], collections=[cid])
    assert 'data-collection-option="RH"' not in carol.get("/").get_data(as_text=True)


def test_the_knowledge_pages_name_the_groups_that_read_a_collection(app, people):
    admin, bob, carol = people
    admin.post("/knowledge/new", data={"name": "RH", "access": "listed", "readers": "alice"})
    with app.app_context():
        cid = db.session.scalar(db.select(Collection.id).where(Collection.name == "RH"))
    make_group(app, "Paie", members=["bob"], collections=[cid])
    listed = admin.get("/knowledge", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "alice, groupe « Paie »" in listed.split("data-readers>")[1].split("</td>")[0]
    page = html.unescape(admin.get(f"/knowledge/{cid}").get_data(as_text=True))
    assert "Read by: alice, group “Paie”" in page


def test_a_collection_a_group_reads_may_list_no_reader_by_name(app, people):
    admin, bob, carol = people
    admin.post("/knowledge/new", data={"name": "RH", "access": "listed", "readers": "alice"})
    with app.app_context():
        cid = db.session.scalar(db.select(Collection.id).where(Collection.name == "RH"))
    form = {"name": "RH", "access": "listed", "readers": ""}
    assert admin.post(f"/knowledge/{cid}/edit", data=form).status_code == 400, "nobody would read it"
    make_group(app, "Paie", members=["bob"], collections=[cid])
    assert admin.post(f"/knowledge/{cid}/edit", data=form).status_code == 302
    assert 'data-collection-option="RH"' in bob.get("/").get_data(as_text=True)


# -- every entry point: the same refusal, nothing generated, nothing stored -------------------
REFUSAL = (
    "The model “Other” is kept for some groups, and you are not in them. Pick another model, "
    "or ask the administrator."
)
STREAM = {"Accept": "text/event-stream"}
HTML = {"Accept": "text/html"}


def api_key_of(client) -> str:
    made = client.post("/settings/api-keys", data={"name": "scripts"}).get_data(as_text=True)
    return re.search(r"data-key>(cau_[\w-]+)<", made)[1]


@pytest.fixture
def engine_models(engine, monkeypatch) -> list[str]:
    """The model of every answer the engine was asked to write."""
    asked = []
    real = engine.stream_chat

    def spy(model_id, *args, **kwargs):
        asked.append(model_id)
        return real(model_id, *args, **kwargs)

    monkeypatch.setattr(engine, "stream_chat", spy)
    return asked


@pytest.fixture
def carol_before(app, people, engine_models):
    """Carol's conversation on "other" (one exchange, from before the model was kept for the
    Juristes), her conversation on "tiny", her API key; then "other" kept for Bob's group."""
    admin, bob, carol = people
    on_other = carol.post("/conversations", json={"model": "other"}, headers=JSON).json["id"]
    carol.post(f"/conversations/{on_other}/messages", json={"content": "bonjour"}, headers=STREAM).get_data()
    on_tiny = carol.post("/conversations", json={"model": "tiny"}, headers=JSON).json["id"]
    carol.post("/settings/presets", data={"name": "Juridique", "system_prompt": "", "model": "other"})
    key = api_key_of(carol)
    make_group(app, "Juristes", models=["other"], members=["bob"])
    engine_models.clear()
    with app.app_context():
        answer = db.session.scalar(
            db.select(Message.id).where(Message.conversation_id == on_other, Message.role == "assistant")
        )
    return {"on_other": on_other, "on_tiny": on_tiny, "answer": answer, "key": key}


def stored(app, conversation_id: int) -> list[tuple]:
    with app.app_context():
        conversation = db.session.get(Conversation, conversation_id)
        return [conversation.model] + [(m.id, m.role, m.content) for m in conversation.messages]


def model_routes(carol, before) -> dict:
    """Every way a person asks a model: (request, the refusal's body as that interface says it)."""
    api = {"Authorization": f"Bearer {before['key']}"}
    chat, openai = (
        {"error": REFUSAL, "status": 403},
        {"error": {"message": REFUSAL, "type": "invalid_request_error", "code": 403}},
    )
    on_other, on_tiny = before["on_other"], before["on_tiny"]
    return {
        "new conversation": (
            lambda: carol.post("/conversations", json={"model": "other"}, headers=JSON),
            chat,
        ),
        "send": (
            lambda: carol.post(
                f"/conversations/{on_other}/messages", json={"content": "et ?"}, headers=STREAM
            ),
            chat,
        ),
        "regenerate": (lambda: carol.post(f"/messages/{before['answer']}/regenerate", headers=STREAM), chat),
        "edit the question": (
            lambda: carol.post(
                f"/messages/{before['answer'] - 1}/edit", json={"content": "?"}, headers=STREAM
            ),
            chat,
        ),
        "model switch": (
            lambda: carol.post(f"/conversations/{on_tiny}/model", json={"model": "other"}, headers=JSON),
            chat,
        ),
        "compare": (
            lambda: carol.post("/compare/answers", json={"model": "other", "prompt": "hi"}, headers=STREAM),
            chat,
        ),
        "compare plan": (lambda: carol.get("/compare/plan?a=tiny&b=other", headers=JSON), chat),
        "API generate": (
            lambda: carol.post("/api/v1/generate", json={"model": "other", "prompt": "hi"}, headers=api),
            {"error": REFUSAL, "status": 403},
        ),
        "API compare": (
            lambda: carol.post(
                "/api/v1/compare", json={"models": ["tiny", "other"], "prompt": "hi"}, headers=api
            ),
            {"error": REFUSAL, "status": 403},
        ),
        "OpenAI chat completions": (
            lambda: carol.post(
                "/v1/chat/completions",
                json={"model": "other", "messages": [{"role": "user", "content": "hi"}]},
                headers=api,
            ),
            openai,
        ),
    }


def test_someone_outside_a_models_groups_gets_the_same_refusal_on_every_entry_point(
    app, people, carol_before
):
    admin, bob, carol = people
    before = {c: stored(app, carol_before[c]) for c in ("on_other", "on_tiny")}
    wrong = []
    for what, (ask, refusal) in model_routes(carol, carol_before).items():
        response = ask()
        if response.status_code != 403 or response.json != refusal:
            wrong.append(f"{what}: {response.status_code} {response.get_data(as_text=True)[:200]}")
    assert not wrong, "\n".join(wrong)
    assert {c: stored(app, carol_before[c]) for c in before} == before, "something was stored"


def test_nothing_is_generated_for_someone_outside_a_models_groups(app, people, carol_before, engine_models):
    admin, bob, carol = people
    for _what, (ask, _refusal) in model_routes(carol, carol_before).items():
        ask().close()
    assert engine_models == []


def test_the_page_says_the_same_refusal_when_a_form_asks_for_the_model(app, people, carol_before):
    admin, bob, carol = people
    response = carol.post("/conversations", data={"model": "other"}, headers=HTML)
    assert response.status_code == 403
    page = html.unescape(response.get_data(as_text=True))
    assert REFUSAL in page and "for administrators" not in page


def test_every_route_a_person_can_reach_never_writes_with_a_model_kept_from_them(
    app, people, carol_before, engine_models
):
    """The sweep over the whole URL map (tests/url_map.py): each route, called as Carol with her
    own ids and every field naming the kept model, never gets an answer written by it; a route
    added later is swept too."""
    admin, bob, carol = people
    api = {"Authorization": f"Bearer {carol_before['key']}"}
    with app.app_context():
        preset = db.session.scalar(db.select(Preset.id))
        question = carol_before["answer"] - 1
    owned = {
        "conversation_id": [carol_before["on_other"], carol_before["on_tiny"]],
        "message_id": [question, carol_before["answer"]],
        "preset_id": [preset],
        "key_id": [999_999],  # not hers to revoke: the sweep's API calls need her key
    }
    # These end what the sweep goes on with (her session, her conversations), and name no model.
    ending = {"auth.logout", "chat.delete", "settings.delete_preset"}
    body = {
        "model": "other",
        "models": ["tiny", "other"],
        "content": "sweep",
        "prompt": "sweep",
        "messages": [{"role": "user", "content": "sweep"}],
    }
    rules = [
        rule
        for rule in app.url_map.iter_rules()
        if not rule.rule.startswith(("/admin", "/static")) and rule.endpoint not in ending
    ]
    swept = 0
    for rule, method, url in sweep(app, rules, owned):
        if method in ("HEAD", "OPTIONS"):
            continue
        headers = {**JSON, **(api if rule.endpoint.startswith(("api.", "openai.")) else {})}
        body_kw = {"json": body} if method in ("POST", "PUT", "PATCH", "DELETE") else {}
        carol.open(url, method=method, headers=headers, **body_kw).close()
        swept += 1
    assert swept >= 60, swept
    app.extensions["answers"].cancel_all(Outcome.INTERRUPTED)
    assert "other" not in engine_models, "an answer was written by the kept model"
    assert stored(app, carol_before["on_tiny"])[0] == "tiny"


# -- those who may ------------------------------------------------------------------------------
def test_a_member_of_the_models_group_uses_it_in_the_chat_and_the_api(
    app, people, carol_before, engine_models
):
    admin, bob, carol = people
    created = bob.post("/conversations", json={"model": "other"}, headers=JSON)
    assert created.status_code == 201
    answer = bob.post(f"/conversations/{created.json['id']}/messages", json={"content": "hi"}, headers=STREAM)
    assert sse_events(answer.get_data(as_text=True))[-1][0] == "done"
    key = api_key_of(bob)
    generated = bob.post(
        "/api/v1/generate",
        json={"model": "other", "prompt": "hi"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert generated.status_code == 200 and generated.json["outcome"] == "complete"
    assert engine_models == ["other", "other"]


def test_an_admin_uses_a_model_kept_for_a_group_they_are_not_in(app, people, carol_before, engine_models):
    admin, bob, carol = people
    created = admin.post("/conversations", json={"model": "other"}, headers=JSON)
    assert created.status_code == 201
    answer = admin.post(
        f"/conversations/{created.json['id']}/messages", json={"content": "hi"}, headers=STREAM
    )
    assert sse_events(answer.get_data(as_text=True))[-1][0] == "done"
    assert engine_models == ["other"]


def test_a_model_no_group_lists_is_used_by_someone_in_no_group(app, people, carol_before, engine_models):
    admin, bob, carol = people
    assert carol.post("/conversations", json={"model": "tiny"}, headers=JSON).status_code == 201
    answer = carol.post(
        f"/conversations/{carol_before['on_tiny']}/messages", json={"content": "hi"}, headers=STREAM
    )
    assert sse_events(answer.get_data(as_text=True))[-1][0] == "done"
    assert engine_models == ["tiny"]


# -- the lists hide it --------------------------------------------------------------------------
def test_every_list_of_models_hides_a_model_kept_from_its_reader(app, people, carol_before):
    admin, bob, carol = people
    api = {"Authorization": f"Bearer {carol_before['key']}"}
    assert [m["id"] for m in carol.get("/models").json["models"]] == ["tiny"]
    assert [m["id"] for m in carol.get("/api/v1/models", headers=api).json["models"]] == ["tiny"]
    assert [m["id"] for m in carol.get("/v1/models", headers=api).json["data"]] == ["tiny"]
    for page in ("/", "/compare", "/settings"):
        text = carol.get(page).get_data(as_text=True)
        assert 'value="other"' not in text, page
        assert 'value="tiny"' in text, page
    assert [m["id"] for m in bob.get("/models").json["models"]] == ["tiny", "other"]
    assert [m["id"] for m in admin.get("/models").json["models"]] == ["tiny", "other"]


def test_a_conversation_on_a_model_kept_from_its_owner_shows_it_unavailable(app, people, carol_before):
    admin, bob, carol = people
    page = carol.get(f"/c/{carol_before['on_other']}").get_data(as_text=True)
    assert page.count('value="other"') == 1, "only its own entry, marked unavailable"
    assert "Other (unavailable)" in page
    assert "is now kept for some groups, and you are not in them" in html.unescape(page)


def test_a_preset_cannot_be_saved_with_a_model_kept_from_its_author(app, people, carol_before):
    admin, bob, carol = people
    response = carol.post("/settings/presets", data={"name": "Autre", "system_prompt": "", "model": "other"})
    assert response.status_code == 400
    assert "This model is not available." in response.get_data(as_text=True)


def test_the_default_model_kept_for_a_group_gives_others_the_first_they_may_use(app, people):
    admin, bob, carol = people
    make_group(app, "Juristes", models=["tiny"], members=["bob"])
    assert carol.get("/models").json["default"] == "other"
    created = carol.post("/conversations", json={}, headers=JSON)
    assert created.status_code == 201 and created.json["model"] == "other"
    assert bob.get("/models").json["default"] == "tiny"


def test_the_apis_health_names_no_loaded_model_kept_from_the_caller(
    app, people, carol_before, engine, monkeypatch
):
    admin, bob, carol = people
    listed = engine.list_models
    monkeypatch.setattr(engine, "list_models", lambda: [replace(m, loaded=True) for m in listed()])
    api = {"Authorization": f"Bearer {carol_before['key']}"}
    loaded = [m["model"] for m in carol.get("/api/v1/health", headers=api).json["loaded"]]
    assert loaded == ["tiny"]
    admins = {"Authorization": f"Bearer {api_key_of(admin)}"}
    assert [m["model"] for m in admin.get("/api/v1/health", headers=admins).json["loaded"]] == [
        "tiny",
        "other",
    ]


def test_benchmarks_are_the_admins_alone_so_a_kept_model_is_never_benchmarked_by_others(
    app, people, carol_before, engine_models
):
    admin, bob, carol = people
    form = {"models": ["other"], "suite": "rapide", "repetitions": "1", "start": "warm", "thinking": "off"}
    assert carol.post("/admin/benchmarks", data=form).status_code == 403
    assert bob.post("/admin/benchmarks", data=form).status_code == 403, "a member neither: admins only"
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(BenchmarkRun)) == 0
    assert engine_models == []
