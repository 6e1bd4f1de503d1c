"""A new server's first steps (issue 16, item 14), in Chromium on a server of their own (its
first account must be made here): the create-account button says it is working and cannot be
pressed twice; the first account is told it is the administrator, with the way to Models and
Benchmarks; an API key, shown once, has a copy button that says "Copié".

Screenshots of each at 1280×800 and 390×844, light and dark, in test-artifacts/browser/first-steps/.
"""

from __future__ import annotations

import uuid

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.pages import VIEWPORTS, fresh_pages, full_page_shot
from tests.conftest import PASSWORD

SHOTS = ARTIFACTS / "first-steps"
LOOKS = [(viewport, theme) for viewport in VIEWPORTS for theme in ("light", "dark")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from benchmarks.server import LiveServer

    with LiveServer(tmp_path_factory.mktemp("first-steps-instance")) as server:
        yield server


@pytest.fixture
def open_page(browser, server):
    """Pages in fresh French profiles, at a viewport and in a theme; closed after the test."""
    with fresh_pages(browser, server.base_url) as open_page:
        yield open_page


def shot(page, name: str) -> None:
    full_page_shot(page, SHOTS, name)


def fill_sign_up(page, username: str) -> None:
    page.goto("/register")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=confirm]", PASSWORD)


def test_the_first_account_is_told_it_is_the_administrator_and_where_to_start(open_page, server):
    """First in this file: it makes the server's first account."""
    page = open_page()
    fill_sign_up(page, "premiere")
    with page.expect_navigation():
        page.click("form button[type=submit]")
    welcome = page.locator("#messages [role=status]", has_text="Vous êtes l'administrateur de ce serveur")
    welcome.wait_for()
    assert welcome.locator("a", has_text="Modèles").get_attribute("href") == "/admin/models"
    assert welcome.locator("a", has_text="Bancs d'essai").get_attribute("href") == "/admin/benchmarks"
    # A one-time message: each look is the same page, resized and recoloured where it stands.
    for viewport, theme in LOOKS:
        page.set_viewport_size(VIEWPORTS[viewport]["viewport"])
        page.emulate_media(color_scheme=theme)
        shot(page, f"admin-welcome-{viewport}-{theme}")
    page.wait_for_selector("#prompt")
    assert not page.errors


@pytest.mark.parametrize(("viewport", "theme"), LOOKS)
def test_the_create_account_button_shows_it_is_working_and_cannot_be_pressed_twice(
    open_page, viewport, theme
):
    page = open_page(viewport, theme)
    fill_sign_up(page, f"u-{uuid.uuid4().hex[:8]}")
    # What the browser would send, counted last; sending held back, so that the page stays in
    # its busy state to be looked at (a request held by Playwright froze the page's rendering).
    page.evaluate(
        """() => {
          window.sent = 0;
          window.addEventListener("submit", (event) => {
            if (!event.defaultPrevented) window.sent += 1;
            event.preventDefault();
          });
        }"""
    )
    button = page.locator("form button[type=submit]")
    button.click()
    page.wait_for_function("() => document.querySelector('form button[type=submit]').disabled")
    assert button.get_attribute("aria-busy") == "true"
    assert "Création du compte" in button.inner_text()
    shot(page, f"register-busy-{viewport}-{theme}")
    button.click(force=True)  # a second press, and Enter in a field: nothing more is sent
    page.press("input[name=confirm]", "Enter")
    assert page.evaluate("window.sent") == 1
    assert not page.errors


@pytest.mark.parametrize(("viewport", "theme"), LOOKS)
def test_a_new_api_key_has_a_copy_button_that_says_copied(open_page, viewport, theme):
    page = open_page(viewport, theme, permissions=["clipboard-read", "clipboard-write"])
    fill_sign_up(page, f"k-{uuid.uuid4().hex[:8]}")
    with page.expect_navigation():
        page.click("form button[type=submit]")
    page.goto("/settings#api-keys")
    page.fill("#key-name", "carnet")
    with page.expect_navigation():
        page.click("#api-keys form button")
    key = page.locator("[data-new-key] [data-key]").inner_text().strip()
    copy = page.locator("[data-copy-key]")
    assert copy.inner_text().strip() == "Copier"
    copy.click()
    page.wait_for_function("() => document.querySelector('[data-copy-key]').textContent.includes('Copié')")
    assert page.evaluate("navigator.clipboard.readText()") == key
    assert page.locator("[data-copy-status]").inner_text() == "Copié"
    page.locator("#api-keys").scroll_into_view_if_needed()
    shot(page, f"api-key-copied-{viewport}-{theme}")
    page.goto("/account/password")  # where the key can be revoked with a new password
    assert page.get_by_label("Révoquer aussi mes clés d'API").is_visible()
    shot(page, f"password-revoke-keys-{viewport}-{theme}")
    assert not page.errors
