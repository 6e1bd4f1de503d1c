"""Groups in headless Chromium against the real server: the admin reaches them from the admin's
navigation, makes a group, puts a colleague in it, keeps a model for it, and sees the Models page
say so; a colleague outside it no longer finds the model in the chat's picker (their preset naming it
keeps a model they may use), one inside does;
a mistake is said beside its field; the group is deleted and the model is everyone's again.
Each page is kept as screenshots at 1280x800 and 390x844, light and dark."""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from tests.browser.conftest import log_in_through_form
from tests.browser.pages import DESKTOP, new_chat, screenshots

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
from playwright.sync_api import expect  # noqa: E402

KEPT_MODEL = "deepseek-r1:1.5b"  # one of the Ollama stand-in's models
PRESET = "Juridique"


@pytest.fixture(scope="module")
def colleagues(live_server, admin) -> dict[str, tuple[str, str]]:
    """Two accounts: one to be put in the group, one left outside it."""
    from benchmarks.client import ChatClient

    made = {}
    for role in ("inside", "outside"):
        account = (f"{role}-{uuid.uuid4().hex[:6]}", f"le mot de passe de {role}")
        client = ChatClient(live_server.base_url)
        assert client.register(*account).ok
        # A preset naming the model, made while it is everyone's.
        preset = {"csrf_token": client.csrf_token, "name": PRESET, "system_prompt": "Réponds en juriste."}
        made_preset = client.session.post(
            client.url("/settings/presets"), data=preset | {"model": KEPT_MODEL}
        )
        assert made_preset.ok
        # And a conversation on it, from the same time.
        made[role] = account
        made[f"{role} conversation"] = client.create_conversation(KEPT_MODEL)
    return made


def picker_of(browser, live_server, account) -> tuple[list[str], str]:
    """The models the chat's picker offers to `account`, and the one picked once their preset
    naming KEPT_MODEL is chosen for a new conversation."""
    context = browser.new_context(locale="fr-FR", base_url=live_server.base_url, viewport=DESKTOP)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        log_in_through_form(page, live_server.base_url, *account)
        new_chat(page)
        offered = page.locator("#model option").evaluate_all("options => options.map(o => o.value)")
        page.locator("#preset").select_option(label=PRESET)
        return offered, page.locator("#model").input_value()
    finally:
        context.close()


def _their_conversation_says_why(browser, live_server, account, conversation_id: int, artifacts_dir) -> None:
    """A conversation on the model from before the group kept it: its page says the model is
    kept for groups, and a message sent anyway is refused with the words every entry point uses."""
    context = browser.new_context(locale="fr-FR", base_url=live_server.base_url, viewport=DESKTOP)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        log_in_through_form(page, live_server.base_url, *account)
        page.goto(f"/c/{conversation_id}")
        expect(page.locator("[data-model-unavailable]")).to_contain_text(
            "désormais réservé à certains groupes"
        )
        page.locator("#prompt").fill("Bonjour")
        page.locator("#prompt").press("Enter")
        expect(page.locator("#composer-error")).to_have_text(
            "Le modèle « deepseek-r1 (1.5b) » est réservé à certains groupes, dont vous ne faites pas "
            "partie. Choisissez un autre modèle, ou demandez à l’administrateur."
        )
        screenshots(page, artifacts_dir, "groups-chat-kept")
    finally:
        context.close()


def test_an_admin_keeps_a_model_for_a_group_and_only_its_members_see_it(
    open_page, browser, live_server, colleagues, artifacts_dir
):
    inside, outside = colleagues["inside"], colleagues["outside"]
    offered, with_preset = picker_of(browser, live_server, outside)
    assert KEPT_MODEL in offered and with_preset == KEPT_MODEL, "everyone's before the group"
    page = open_page()
    page.goto("/admin/models")
    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Groupes").click()
    expect(page.locator("h1")).to_have_text("Groupes")
    # A mistake is said beside its field, in French.
    page.get_by_role("button", name="Créer le groupe").click()
    expect(page.locator("[data-error=name]")).to_have_text("Donnez un nom au groupe.")
    screenshots(page, artifacts_dir, "groups-refused")
    name = f"Juristes {uuid.uuid4().hex[:4]}"
    page.get_by_label("Nom", exact=True).fill(name)
    page.get_by_label("Description", exact=True).fill("Le service juridique : contrats et litiges")
    page.get_by_label("Groupe de l’annuaire (facultatif)").fill("cn=juristes,ou=groups,dc=example,dc=org")
    page.get_by_role("button", name="Créer le groupe").click()
    expect(page.locator("[data-group-title]")).to_have_text(name)
    expect(page.locator("[data-flash]")).to_contain_text("créé")

    page.locator("#members-input").fill(f"{inside[0]}, personne")
    page.locator("[data-add-members] button").click()
    expect(page.locator("[data-error=members]")).to_have_text(
        "Aucun compte ne s’appelle « personne » : vérifiez l’orthographe."
    )
    page.locator("#members-input").fill(inside[0])
    page.locator("[data-add-members] button").click()
    expect(page.locator(f"[data-member='{inside[0]}']")).to_be_visible()
    page.locator(f"[data-model='{KEPT_MODEL}']").check()
    page.get_by_role("button", name="Enregistrer les modèles").click()
    expect(page.locator("[data-flash]")).to_contain_text("Modèles de")
    expect(page.locator(f"[data-model='{KEPT_MODEL}']")).to_be_checked()
    screenshots(page, artifacts_dir, "groups-group")
    page.goto("/admin/groups")
    expect(page.locator(f"[data-group='{name}'] [data-members]")).to_have_text("1 membre")
    screenshots(page, artifacts_dir, "groups-list")

    page.goto("/admin/models")
    row = page.locator(f"[data-model-id='{KEPT_MODEL}'] [data-model-users]")
    expect(row).to_contain_text(name)
    row.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / "groups-models-page-1280-light.png"))
    offered, with_preset = picker_of(browser, live_server, outside)
    assert KEPT_MODEL not in offered
    assert with_preset in offered, "the preset keeps a model they may use"
    offered, with_preset = picker_of(browser, live_server, inside)
    assert KEPT_MODEL in offered and with_preset == KEPT_MODEL
    _their_conversation_says_why(
        browser, live_server, outside, colleagues["outside conversation"], artifacts_dir
    )

    # Deleted (after its confirmation): the model is everyone's again.
    page.goto("/admin/groups")
    page.locator(f"[data-group='{name}'] [data-group-name]").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("[data-delete-group] button").click()
    expect(page.locator("[data-flash]")).to_contain_text("supprimé")
    assert KEPT_MODEL in picker_of(browser, live_server, outside)[0]


def _joined_from_the_directory(live_server, group_id: int, username: str) -> None:
    """What a directory sign-in does (app.directory.accounts): the person put in the mapped group."""
    with sqlite3.connect(live_server.instance_dir / "causerie.sqlite3", timeout=30) as connection:
        (user_id,) = connection.execute("SELECT id FROM user WHERE username = ?", (username,)).fetchone()
        connection.execute(
            "INSERT INTO group_member (group_id, user_id, from_directory) VALUES (?, ?, 1)",
            (group_id, user_id),
        )


def test_the_groups_pages_when_there_is_none_yet_and_with_a_directory_group(
    open_page, live_server, colleagues, artifacts_dir
):
    page = open_page()
    page.goto("/admin/groups")
    if page.locator("[data-no-group]").count():
        screenshots(page, artifacts_dir, "groups-empty")
    page.locator("#name").fill(
        f"Atelier {uuid.uuid4().hex[:4]} avec un nom assez long pour passer à la ligne"
    )
    page.locator("#directory_group").fill(
        "CN=Atelier-Production-Lyon,OU=Groupes,OU=Société,DC=corp,DC=example,DC=com"
    )
    page.get_by_role("button", name="Créer le groupe").click()
    expect(page.locator("[data-group-form]")).to_be_visible()
    expect(page.locator("[data-no-member]")).to_contain_text("prochaine connexion")
    group_id = int(page.url.rstrip("/").rsplit("/", 1)[1].split("#")[0])
    member = colleagues["outside"][0]
    _joined_from_the_directory(live_server, group_id, member)
    page.reload()
    row = page.locator(f"[data-member='{member}']")
    expect(row.locator("[data-from-directory]")).to_have_text("de l’annuaire")
    expect(row).to_contain_text("géré dans l’annuaire")
    expect(row.locator("[data-remove-member]")).to_have_count(0)
    screenshots(page, artifacts_dir, "groups-directory")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("[data-delete-group] button").click()
    expect(page.locator("[data-flash]")).to_contain_text("supprimé")
