"""Accounts in the admin's hands, in headless Chromium against the real server: the badge of an
account waiting for approval leads to it; the admin makes an account from the Users page and reads
its one-time password once; its owner signs in with it, is told to choose their own, and reaches
the chat once done; the admin deletes the account after the page saying what goes. Each page is
kept as screenshots at 1280x800 and 390x844, light and dark."""

from __future__ import annotations

import json
import sqlite3
import uuid

import pytest

from tests.browser.pages import DESKTOP, screenshots

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
from playwright.sync_api import expect  # noqa: E402

OWN_PASSWORD = "ma phrase de passe à moi"


def registration(page, mode_label: str) -> None:
    page.goto("/admin/users")
    page.get_by_label(mode_label).check()
    page.locator("form", has=page.get_by_label(mode_label)).get_by_role("button", name="Enregistrer").click()


@pytest.fixture
def waiting_account(open_page, live_server) -> str:
    """An account registered while registration needs approval (open again afterwards)."""
    from benchmarks.client import ChatClient

    page = open_page()
    registration(page, "sur approbation : vous approuvez chaque compte")
    name = f"attente-{uuid.uuid4().hex[:6]}"
    assert ChatClient(live_server.base_url).register(name, "le mot de passe en attente").status_code == 202
    yield name
    registration(page, "ouverte : toute personne du réseau")


def a_directory_sign_in_refused_for_the_name_of(live_server, username: str) -> None:
    """What the sign-in of a directory person named like a local account leaves (app.directory)."""
    database = live_server.instance_dir / "causerie.sqlite3"
    with sqlite3.connect(database) as connection:
        holder = connection.execute("SELECT id FROM user WHERE username = ?", (username,)).fetchone()[0]
        connection.execute(
            "INSERT INTO audit_entry (created_at, actor_name, address, action, target, details)"
            " VALUES (datetime('now'), '', '127.0.0.1', 'directory.name_clash', ?, ?)",
            (
                username.upper(),
                json.dumps({"source": "ldap", "directory_id": "ldap:42", "account_id": holder}),
            ),
        )


def test_an_admin_makes_an_account_its_owner_chooses_a_password_and_the_admin_deletes_it(
    open_page, browser, live_server, waiting_account, artifacts_dir
):
    page = open_page()
    page.goto("/")
    badge = page.locator("[data-pending-badge]")
    expect(badge).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "users-badge-in-the-chat-1280-light.png"))
    badge.click()
    expect(page.locator("[data-pending-only]")).to_be_visible()
    expect(page.locator(f'tr[data-user="{waiting_account}"]')).to_be_visible()
    page.goto("/admin/users")
    # A mistake is said beside the field, in French.
    page.get_by_role("button", name="Créer le compte").click()
    expect(page.locator("#username-errors")).to_have_text("Choisissez un nom d'utilisateur.")
    screenshots(page, artifacts_dir, "users-new-account-refused")

    name = f"nouvelle-{uuid.uuid4().hex[:6]}"
    page.get_by_label("Nom d'utilisateur").fill(name)
    page.get_by_label("Peut gérer les bases de connaissances").check()
    page.get_by_role("button", name="Créer le compte").click()
    expect(page.locator("h1")).to_have_text("Compte créé")
    one_time = page.locator("[data-password]").inner_text()
    assert len(one_time) >= 16
    screenshots(page, artifacts_dir, "users-one-time-password")

    newcomer = browser.new_context(locale="fr-FR", base_url=live_server.base_url, viewport=DESKTOP)
    newcomer.set_default_timeout(15_000)
    try:
        own = newcomer.new_page()
        own.goto("/login")
        own.fill("input[name=username]", name)
        own.fill("input[name=password]", one_time)
        own.click("form button[type=submit]")
        expect(own.locator("[data-must-change]")).to_contain_text("choisissez le vôtre avant de continuer")
        own.goto("/")  # anything else leads back here
        expect(own.locator("[data-must-change]")).to_be_visible()
        screenshots(own, artifacts_dir, "users-must-change-password")
        own.fill("input[name=current]", one_time)
        own.fill("input[name=password]", OWN_PASSWORD)
        own.fill("input[name=confirm]", OWN_PASSWORD)
        own.get_by_role("button", name="Changer le mot de passe").click()
        own.wait_for_selector("#prompt")
    finally:
        newcomer.close()

    # Some of their own things, for the confirmation page to name: a conversation, an API key.
    from benchmarks.client import ChatClient

    theirs = ChatClient(live_server.base_url)
    assert theirs.login(name, OWN_PASSWORD).ok
    theirs.post_json(f"/conversations/{theirs.create_conversation()}/rename", {"title": "Notes"})
    theirs.create_api_key("script")
    a_directory_sign_in_refused_for_the_name_of(live_server, name)
    page.goto("/admin/users")
    row = page.locator(f'tr[data-user="{name}"]')
    expect(row).to_be_visible()
    expect(page.locator("[data-name-clash]").first).to_contain_text(
        f"le nom est celui du compte local {name}"
    )
    screenshots(page, artifacts_dir, "users-page")
    row.get_by_role("link", name="Supprimer").click()
    expect(page.locator("h1")).to_have_text(f"Supprimer le compte de {name} ?")
    expect(page.locator("[data-count=conversations]")).to_have_text("1 conversation, 0 message")
    expect(page.locator("[data-count=api_keys]")).to_have_text("1 clé d'API")
    screenshots(page, artifacts_dir, "users-delete-confirmation")
    page.get_by_role("button", name="Supprimer le compte et ses données").click()
    expect(page.locator("[data-flash]")).to_have_text(f"Le compte de {name} et ses données sont supprimés.")
    expect(page.locator(f'tr[data-user="{name}"]')).to_have_count(0)

    gone = browser.new_context(locale="fr-FR", base_url=live_server.base_url, viewport=DESKTOP)
    try:
        refused = gone.new_page()
        refused.goto("/login")
        refused.fill("input[name=username]", name)
        refused.fill("input[name=password]", OWN_PASSWORD)
        refused.click("form button[type=submit]")
        expect(refused.locator("form[novalidate]")).to_contain_text(
            "Nom d'utilisateur ou mot de passe incorrect."
        )
    finally:
        gone.close()
