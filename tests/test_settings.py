"""The settings page: the language and theme a user picks follow them everywhere, and their
presets are theirs alone."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Preset, User
from tests.conftest import AuthActions

ENGLISH = {"Accept-Language": "en"}
FRENCH = {"Accept-Language": "fr"}


def _user(app, username: str = "alice") -> User:
    with app.app_context():
        return db.session.scalar(sa.select(User).where(User.username == username))


def _presets(app, username: str = "alice") -> list[tuple[str, str, str]]:
    with app.app_context():
        rows = db.session.scalars(
            sa.select(Preset).join(User).where(User.username == username).order_by(Preset.id)
        )
        return [(p.name, p.system_prompt, p.model) for p in rows]


def _preset_id(app, name: str) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(Preset.id).where(Preset.name == name))


def _save(client, language: str = "en", theme: str = "system", **headers):
    return client.post("/settings", data={"language": language, "theme": theme}, headers=headers)


def _new_preset(
    client, name: str = "Traduction", system_prompt: str = "Traduis en anglais.", model: str = ""
):
    return client.post(
        "/settings/presets", data={"name": name, "system_prompt": system_prompt, "model": model}
    )


def _fresh_browser(app, headers: dict):
    client = app.test_client()
    client.environ_base.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    return client


# -- language ---------------------------------------------------------------------------------
def test_language_chosen_in_settings_applies_after_signing_in_again_in_another_browser(app, signed_in):
    assert _save(signed_in, language="fr").status_code == 302
    other = _fresh_browser(app, ENGLISH)
    assert '<html lang="en"' in other.get("/login").get_data(as_text=True)
    AuthActions(other).login()
    assert '<html lang="fr"' in other.get("/").get_data(as_text=True)
    AuthActions(other).logout()  # the sign-in put it in this browser's session: it stays
    assert '<html lang="fr"' in other.get("/login").get_data(as_text=True)


def test_language_changed_on_one_device_applies_to_the_others_at_their_next_request(app, signed_in):
    other = _fresh_browser(app, ENGLISH)
    AuthActions(other).login()
    assert '<html lang="en"' in other.get("/").get_data(as_text=True)
    signed_in.post("/language", data={"lang": "fr"})
    assert '<html lang="fr"' in other.get("/").get_data(as_text=True)


def test_language_switch_stores_the_choice_in_the_account(app, signed_in):
    response = signed_in.post("/language", data={"lang": "fr", "next": "/settings"})
    assert response.status_code == 302 and response.headers["Location"] == "/settings"
    assert _user(app).language == "fr"


def test_language_switch_while_signed_out_changes_this_browser_only(app, client, auth):
    auth.register()
    auth.logout()
    client.post("/language", data={"lang": "fr"})
    assert '<html lang="fr"' in client.get("/login", headers=ENGLISH).get_data(as_text=True)
    assert _user(app).language == ""


def test_a_user_who_never_chose_gets_the_browsers_language(app, signed_in):
    assert _user(app).language == ""
    for headers, lang in ((ENGLISH, "en"), (FRENCH, "fr")):
        other = _fresh_browser(app, headers)
        AuthActions(other).login()
        assert f'<html lang="{lang}"' in other.get("/").get_data(as_text=True)


def test_the_accounts_language_wins_over_the_one_picked_on_the_sign_in_page(app, signed_in):
    _save(signed_in, language="fr")
    other = _fresh_browser(app, ENGLISH)
    other.post("/language", data={"lang": "en"})
    AuthActions(other).login()
    assert '<html lang="fr"' in other.get("/").get_data(as_text=True)


def test_an_unknown_language_from_the_switch_is_refused_400_with_a_message(app, signed_in):
    response = signed_in.post("/language", data={"lang": "de"})
    assert response.status_code == 400
    assert "Pick one of the languages offered." in response.get_data(as_text=True)
    assert _user(app).language == ""


@pytest.mark.parametrize(
    ("language", "theme", "message"),
    [("de", "dark", "Pick one of the languages offered."), ("en", "neon", "Pick one of the themes offered.")],
)
def test_an_unknown_language_or_theme_in_settings_is_refused_400_with_a_message(
    app, signed_in, language, theme, message
):
    response = _save(signed_in, language=language, theme=theme)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert (_user(app).language, _user(app).theme) == ("", "system")


def test_saved_settings_are_confirmed_in_the_new_language(app, signed_in):
    page = _save(signed_in, language="en", theme="dark", **FRENCH)
    assert page.status_code == 302
    page = signed_in.get(page.headers["Location"], headers=FRENCH).get_data(as_text=True)
    assert "Settings saved." in page and '<html lang="en"' in page
    assert (_user(app).language, _user(app).theme) == ("en", "dark")


def test_settings_page_shows_the_current_choices(signed_in):
    _save(signed_in, language="en", theme="light")
    page = signed_in.get("/settings").get_data(as_text=True)
    checked = re.findall(r"<input[^>]*\bchecked\b[^>]*>", page)
    assert len(checked) == 2
    assert 'value="en"' in checked[0] and 'value="light"' in checked[1]


def test_settings_page_asks_a_visitor_to_sign_in(client):
    response = client.get("/settings")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


# -- theme ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("theme", "html", "scheme"),
    [
        ("dark", 'class="h-full dark"', 'content="dark"'),
        ("light", 'class="h-full light"', 'content="light"'),
        ("system", 'class="h-full"', 'content="light dark"'),
    ],
)
def test_the_users_theme_is_on_every_page_before_any_script_runs(signed_in, theme, html, scheme):
    _save(signed_in, theme=theme)
    for path in ("/", "/settings", "/account/password"):
        page = signed_in.get(path).get_data(as_text=True)
        assert html in page, path
        assert f'<meta name="color-scheme" {scheme}>' in page, path


def test_signed_out_pages_follow_the_devices_theme(client):
    page = client.get("/login").get_data(as_text=True)
    assert 'class="h-full"' in page and 'content="light dark"' in page


def test_the_dark_variant_obeys_the_class_then_the_device():
    from tests.test_pages import ROOT

    css = (ROOT / "static" / "css" / "app.css").read_text()
    assert ".dark\\:bg-slate-950:where(.dark,.dark *)" in css
    assert "@media (prefers-color-scheme:dark){.dark\\:bg-slate-950:where(:not(.light,.light *))" in css


# -- presets ----------------------------------------------------------------------------------
def test_a_preset_is_created_listed_edited_and_deleted(app, signed_in):
    response = _new_preset(signed_in, model="tiny")
    assert response.status_code == 302
    page = signed_in.get("/settings").get_data(as_text=True)
    assert "Preset “Traduction” created." in page and "Traduis en anglais." in page
    assert _presets(app) == [("Traduction", "Traduis en anglais.", "tiny")]

    preset_id = _preset_id(app, "Traduction")
    edit = signed_in.get(f"/settings/presets/{preset_id}").get_data(as_text=True)
    assert 'value="Traduction"' in edit and "Traduis en anglais." in edit
    response = signed_in.post(
        f"/settings/presets/{preset_id}", data={"name": "Relecture", "system_prompt": "Relis.", "model": ""}
    )
    assert response.status_code == 302
    assert _presets(app) == [("Relecture", "Relis.", "")]

    response = signed_in.post(f"/settings/presets/{preset_id}/delete")
    assert response.status_code == 302
    assert "Preset “Relecture” deleted." in signed_in.get("/settings").get_data(as_text=True)
    assert _presets(app) == []


def test_deleting_a_preset_asks_for_confirmation_first(signed_in):
    _new_preset(signed_in)
    page = signed_in.get("/settings").get_data(as_text=True)
    assert 'data-confirm="Delete the preset “Traduction”?"' in page


def test_the_presets_are_there_for_the_new_chat_page(app, signed_in):
    _new_preset(signed_in, name="B")
    _new_preset(signed_in, name="A", model="other")
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == "alice"))
        assert [(p.name, p.model) for p in user.presets] == [("A", "other"), ("B", "")]


PRESET_ERRORS = {
    "empty name": ({"name": "   "}, "Give the preset a name."),
    "name over 100": ({"name": "n" * 101}, "A preset name has 1 to 100 characters."),
    "system prompt over 8000": (
        {"system_prompt": "s" * 8001},
        "A system prompt has at most 8000 characters.",
    ),
    "model not offered": ({"model": "ghost"}, "This model is not available."),
    "same name, other case": ({"name": "traduction"}, "You already have a preset with this name."),
    "same name, other accented case": ({"name": "ÉQUIPE"}, "You already have a preset with this name."),
}


@pytest.mark.parametrize("case", PRESET_ERRORS, ids=list(PRESET_ERRORS))
def test_a_preset_that_breaks_a_rule_is_refused_400_with_a_message(app, signed_in, case):
    _new_preset(signed_in)
    _new_preset(signed_in, name="équipe")
    fields, message = PRESET_ERRORS[case]
    response = _new_preset(signed_in, **{"name": "Nouveau"} | fields)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert [name for name, _prompt, _model in _presets(app)] == ["Traduction", "équipe"]


def test_a_preset_at_its_limits_is_accepted(app, signed_in):
    assert _new_preset(signed_in, name="n" * 100, system_prompt="s" * 8000).status_code == 302
    assert _presets(app) == [("n" * 100, "s" * 8000, "")]


def test_renaming_a_preset_to_another_ones_name_is_refused_but_changing_its_own_case_is_not(app, signed_in):
    _new_preset(signed_in)
    _new_preset(signed_in, name="Relecture")
    preset_id = _preset_id(app, "Relecture")
    response = signed_in.post(f"/settings/presets/{preset_id}", data={"name": "TRADUCTION"})
    assert response.status_code == 400
    assert "You already have a preset with this name." in response.get_data(as_text=True)
    assert signed_in.post(f"/settings/presets/{preset_id}", data={"name": "relecture"}).status_code == 302
    assert [name for name, _prompt, _model in _presets(app)] == ["Traduction", "relecture"]


def test_two_users_may_have_presets_of_the_same_name(app, signed_in):
    _new_preset(signed_in)
    bob = app.test_client()
    AuthActions(bob).register("bob")
    assert _new_preset(bob).status_code == 302
    assert _presets(app, "alice") == _presets(app, "bob") == [("Traduction", "Traduis en anglais.", "")]


def test_another_users_preset_answers_404_and_stays_as_it_was(app, signed_in):
    _new_preset(signed_in)
    preset_id = _preset_id(app, "Traduction")
    bob = app.test_client()
    AuthActions(bob).register("bob")
    assert bob.get(f"/settings/presets/{preset_id}").status_code == 404
    assert bob.post(f"/settings/presets/{preset_id}", data={"name": "À Bob"}).status_code == 404
    assert bob.post(f"/settings/presets/{preset_id}/delete").status_code == 404
    assert "Traduction" not in bob.get("/settings").get_data(as_text=True)
    assert _presets(app) == [("Traduction", "Traduis en anglais.", "")]


def test_settings_forms_need_the_csrf_token(app, signed_in):
    _new_preset(signed_in)
    preset_id = _preset_id(app, "Traduction")
    app.config["WTF_CSRF_ENABLED"] = True
    attempts = [
        ("/settings", {"language": "fr", "theme": "dark"}),
        ("/language", {"lang": "fr"}),
        ("/settings/presets", {"name": "Autre"}),
        (f"/settings/presets/{preset_id}", {"name": "Autre"}),
        (f"/settings/presets/{preset_id}/delete", {}),
    ]
    for url, form in attempts:
        response = signed_in.post(url, data=form)
        assert response.status_code == 400, url
        assert "session has expired" in response.get_data(as_text=True), url
    assert (_user(app).language, _user(app).theme) == ("", "system")
    assert _presets(app) == [("Traduction", "Traduis en anglais.", "")]
