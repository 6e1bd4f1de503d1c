"""The admin decides which models users get and how they answer; the next message obeys.

Web layer only: the scripted engine records what each request asked of it.
"""

import re

import pytest

from tests.conftest import PASSWORD, sse_events
from tests.test_chat_web import JSON, new_conversation, send


@pytest.fixture
def admin(client, auth):
    auth.register("admin")  # the first account is the admin
    return client


@pytest.fixture
def user(app, admin):
    other = app.test_client()
    other.post("/register", data={"username": "bob", "password": PASSWORD, "confirm": PASSWORD})
    return other


def settings(admin, model: str, enabled: bool = True, **fields):
    data = {"model": model, **{k: str(v) for k, v in fields.items()}}
    if enabled:
        data["enabled"] = "y"  # an unchecked box sends nothing
    return admin.post(f"/admin/models/settings?model={model}", data=data)


def offered(client) -> list[str]:
    return [m["id"] for m in client.get("/models").json["models"]]


def test_admin_disables_a_model_and_users_no_longer_get_it(admin, user):
    assert offered(user) == ["tiny", "other"]
    admin.post("/admin/models/enabled", data={"model": "other", "enabled": "0"})
    assert offered(user) == ["tiny"]
    assert "other" not in user.get("/").get_data(as_text=True).split('id="model"')[1].split("</select>")[0]
    refused = user.post("/conversations", json={"model": "other"}, headers=JSON)
    assert refused.status_code == 409 and "not available" in refused.json["error"]
    admin.post("/admin/models/enabled", data={"model": "other", "enabled": "1"})
    assert offered(user) == ["tiny", "other"]


def test_a_conversation_whose_model_was_disabled_stays_readable_and_says_so(admin, user):
    conversation_id = new_conversation(user, model="other")
    send(user, conversation_id, "Bonjour").get_data()
    admin.post("/admin/models/enabled", data={"model": "other", "enabled": "0"})
    page = user.get(f"/c/{conversation_id}").get_data(as_text=True)
    assert "Bonjour le monde." in page and "data-model-unavailable" in page
    assert "Other (unavailable)" not in page and "other (unavailable)" in page
    refused = send(user, conversation_id, "Encore")
    assert refused.status_code == 409 and "not available" in refused.json["error"]
    switched = user.post(f"/conversations/{conversation_id}/model", json={"model": "tiny"}, headers=JSON)
    assert switched.status_code == 200
    assert send(user, conversation_id, "Encore").status_code == 200


def test_admin_changes_the_default_and_the_next_new_conversation_gets_it(admin, user):
    assert user.get("/models").json["default"] == "tiny"
    admin.post("/admin/models/default", data={"model": "other"})
    assert user.get("/models").json["default"] == "other"
    assert user.post("/conversations", json={}, headers=JSON).json["model"] == "other"
    # A disabled model cannot be the default: users would be offered nothing they can use.
    admin.post("/admin/models/enabled", data={"model": "other", "enabled": "0"})
    assert user.get("/models").json["default"] == "tiny"
    page = admin.get("/admin/models").get_data(as_text=True)
    assert "is not offered; users get" in page


def test_a_models_temperature_and_answer_length_apply_to_the_very_next_message(admin, user, engine):
    conversation_id = new_conversation(user)
    send(user, conversation_id, "Un").get_data()
    assert engine.options[-1].temperature == 0.7  # the configured default
    response = settings(
        admin, "tiny", temperature=0.2, max_tokens=64, top_k=5, top_p=0.5, context=1024, threads=1
    )
    assert response.status_code == 302
    send(user, conversation_id, "Deux").get_data()
    options = engine.options[-1]
    assert (options.temperature, options.max_tokens, options.top_k, options.top_p) == (0.2, 64, 5, 0.5)
    assert (options.context, options.threads) == (1024, 1)


def test_an_emptied_setting_returns_to_the_servers_default(admin, user, engine):
    settings(admin, "tiny", temperature=0.2)
    settings(admin, "tiny", temperature="")
    send(user, new_conversation(user), "Un").get_data()
    assert engine.options[-1].temperature == 0.7


def test_the_models_system_prompt_reaches_the_model_when_the_conversation_has_none(admin, user, engine):
    settings(admin, "tiny", system_prompt="Réponds en français.")
    send(user, new_conversation(user), "Hello").get_data()
    assert [(m.role, m.content) for m in engine.requests[-1]] == [
        ("system", "Réponds en français."),
        ("user", "Hello"),
    ]


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("temperature", "5", "from 0 to 2"),
        ("temperature", "warm", "Not a valid float value"),
        ("context", "64", "from 256 to 131072"),
        ("threads", "0", "from 1 to 256"),
        ("system_prompt", "x" * 4001, "at most 4000 characters"),
        ("think", "maybe", "Not a valid choice"),
    ],
)
def test_bad_settings_are_refused_field_by_field_and_nothing_is_saved(admin, engine, field, value, message):
    response = settings(admin, "tiny", **{field: value})
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    send(admin, new_conversation(admin), "Un").get_data()
    assert engine.options[-1].temperature == 0.7 and engine.options[-1].context is None


def test_settings_of_a_model_no_engine_has_answer_404(admin):
    assert admin.get("/admin/models/settings?model=nowhere").status_code == 404
    assert admin.post("/admin/models/enabled", data={"model": "nowhere", "enabled": "0"}).status_code == 404


def test_a_model_gone_from_every_engine_stays_listed_for_the_admin_with_its_settings(admin, engine):
    settings(admin, "other", temperature=0.3)
    engine.model_ids = ("tiny",)
    page = admin.get("/admin/models").get_data(as_text=True)
    assert "Models no longer found" in page and "other" in page.split("data-missing")[1]
    assert admin.get("/admin/models/settings?model=other").status_code == 200


def test_users_cannot_reach_any_admin_page_or_action(user):
    assert user.get("/admin/models").status_code == 403
    assert user.get("/admin/models/settings?model=tiny").status_code == 403
    for action in ("enabled", "default", "unload"):
        assert user.post(f"/admin/models/{action}", data={"model": "tiny"}).status_code == 403
    assert user.post("/admin/models/settings?model=tiny", data={"model": "tiny"}).status_code == 403


def test_thinking_follows_the_admins_default_until_the_user_switches_it(admin, user, engine):
    engine.thinking_models = {"tiny"}
    settings(admin, "tiny", think="off")
    conversation_id = new_conversation(user)
    send(user, conversation_id, "Un").get_data()
    assert engine.options[-1].think is False
    switched = user.post(f"/conversations/{conversation_id}/thinking", json={"think": "on"}, headers=JSON)
    assert switched.status_code == 200
    send(user, conversation_id, "Deux").get_data()
    assert engine.options[-1].think is True
    started_thinking = new_conversation(user, think="on")
    send(user, started_thinking, "Trois").get_data()
    assert engine.options[-1].think is True


def test_a_thinking_choice_that_is_neither_on_nor_off_is_refused(user):
    conversation_id = new_conversation(user)
    response = user.post(f"/conversations/{conversation_id}/thinking", json={"think": "maybe"}, headers=JSON)
    assert response.status_code == 400 and "either on or off" in response.json["error"]
    assert user.post("/conversations", json={"think": 1}, headers=JSON).status_code == 400


def test_the_model_picker_marks_reasoning_models_for_the_thinking_switch(user, engine):
    engine.thinking_models = {"other"}
    page = user.get("/").get_data(as_text=True)
    assert re.search(r'<option value="other"[^>]*data-thinking="1"', page)
    assert re.search(r'<option value="tiny"[^>]*data-thinking=""', page)
    assert [m["thinking"] for m in user.get("/models").json["models"]] == [False, True]


def test_thinking_is_stored_apart_and_shown_folded_in_history(app, user, engine):
    from app.llm.types import Text, Thinking

    script = [Thinking("Let me"), Thinking(" see."), Text("Four.")]
    engine.script = script
    conversation_id = new_conversation(user)
    events = sse_events(send(user, conversation_id, "2+2?").get_data(as_text=True))
    assert [(n, d["text"]) for n, d in events if n in ("thinking", "token")] == [
        ("thinking", "Let me"),
        ("thinking", " see."),
        ("token", "Four."),
    ]
    stored = user.get(f"/conversations/{conversation_id}/messages").json["messages"][-1]
    assert (stored["thinking"], stored["content"]) == ("Let me see.", "Four.")
    page = user.get(f"/c/{conversation_id}").get_data(as_text=True)
    block = page.split("data-thinking-block>")[0].rsplit("<details", 1)[1]
    assert "open" not in block and "Let me see." in page


def test_unchecking_offered_in_the_settings_form_disables_the_model(admin, user):
    assert settings(admin, "other", enabled=False, temperature=0.4).status_code == 302
    assert offered(user) == ["tiny"]
    form = admin.get("/admin/models/settings?model=other").get_data(as_text=True)
    assert 'id="enabled"' in form and "checked" not in form.split('id="enabled"')[0].rsplit("<input", 1)[1]


def test_a_settings_form_for_one_model_cannot_change_another(admin, engine):
    response = admin.post("/admin/models/settings?model=tiny", data={"model": "other", "temperature": "1.5"})
    assert response.status_code == 400
    send(admin, new_conversation(admin, model="other"), "Un").get_data()
    assert engine.options[-1].temperature == 0.7


def test_thinking_text_is_shown_as_text_never_as_html(user, engine):
    from app.llm.types import Text, Thinking

    engine.script = [Thinking('<img src=x onerror="alert(1)">'), Text("Fini.")]
    conversation_id = new_conversation(user)
    send(user, conversation_id, "Bonjour").get_data()
    page = user.get(f"/c/{conversation_id}").get_data(as_text=True)
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page and "<img src=x" not in page
