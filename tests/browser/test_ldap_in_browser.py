"""Signing in with the company directory's password, in Chromium, against a real OpenLDAP
(tests/ldap_server.py) behind a real server: the chat opens; what the sign-in page says to a
person disabled in the directory and when the directory does not answer; a directory account's
Password page.

Screenshots at 1280×800 and 390×844, light and dark, in test-artifacts/browser/ldap/.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.pages import VIEWPORTS, fresh_pages, full_page_shot
from tests.ldap_server import LdapServer

SHOTS = ARTIFACTS / "ldap"
LOOKS = [(viewport, theme) for viewport in VIEWPORTS for theme in ("light", "dark")]
BOB = "bob's directory password"
DORA = "dora's directory password"  # locked in the directory (ppolicy)


@pytest.fixture(scope="module")
def directory_and_server(tmp_path_factory):
    """A server of its own with LDAP set (the shared one has none), and its directory."""
    from benchmarks.server import LiveServer

    with LdapServer() as directory:
        settings = directory.settings(LDAP_TIMEOUT_SECONDS=2)
        env = {name: ("1" if value is True else str(value)) for name, value in settings.items()}
        env["LOGIN_FAILURES_BEFORE_DELAY"] = "1000"  # every refusal here is on purpose, from one address
        with LiveServer(tmp_path_factory.mktemp("ldap-instance"), env) as server:
            yield directory, server


@pytest.fixture
def open_page(browser, directory_and_server):
    """Pages in fresh French profiles, at a viewport and in a theme; closed after the test."""
    _, server = directory_and_server
    with fresh_pages(browser, server.base_url) as open_page:
        yield open_page


def shot(page, name: str) -> None:
    full_page_shot(page, SHOTS, name)


def submit(page, username: str, password: str) -> None:
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("form button[type=submit]")


def password_errors(page) -> str:
    return page.locator("#password-errors").inner_text()


@pytest.mark.parametrize(("viewport", "theme"), LOOKS)
def test_the_sign_in_page_says_company_passwords_work_here(open_page, viewport, theme):
    page = open_page(viewport, theme)
    page.goto("/login")
    assert page.locator("[data-directory-hint]").inner_text() == (
        "Le nom et le mot de passe de votre compte d'entreprise fonctionnent ici."
    )
    shot(page, f"sign-in-{viewport}-{theme}")
    assert page.errors == []


def test_signing_in_with_the_company_directory_password_opens_the_chat(open_page):
    page = open_page()
    submit(page, "bob", BOB)
    page.wait_for_selector("#prompt")
    assert page.locator('span[title="bob"]').is_visible()  # the account's name in the sidebar
    shot(page, "signed-in-desktop-light")
    assert page.errors == []


@pytest.mark.parametrize(("viewport", "theme"), LOOKS)
def test_a_person_disabled_in_the_directory_is_told_so_on_the_sign_in_page(open_page, viewport, theme):
    page = open_page(viewport, theme)
    submit(page, "dora", DORA)
    assert password_errors(page) == (
        "Votre compte est désactivé dans l'annuaire de l'entreprise. Adressez-vous à votre administrateur."
    )
    shot(page, f"disabled-{viewport}-{theme}")
    assert page.errors == []


@pytest.mark.parametrize(("viewport", "theme"), LOOKS)
def test_a_directory_that_does_not_answer_is_told_on_the_sign_in_page(
    open_page, directory_and_server, viewport, theme
):
    directory, _ = directory_and_server
    page = open_page(viewport, theme)
    directory.stop_answering()
    try:
        submit(page, "bob", BOB)
    finally:
        directory.resume()
    assert (
        password_errors(page)
        == "L'annuaire de l'entreprise est injoignable : réessayez dans quelques minutes."
    )
    shot(page, f"unreachable-{viewport}-{theme}")
    assert page.errors == []


@pytest.mark.parametrize(("viewport", "theme"), LOOKS)
def test_a_directory_account_is_told_where_its_password_changes(open_page, viewport, theme):
    page = open_page(viewport, theme)
    submit(page, "bob", BOB)
    page.goto("/account/password")
    assert page.locator("[data-directory-password]").inner_text() == (
        "Votre mot de passe est celui de votre compte d'entreprise : "
        "changez-le là où vous le changez pour les autres services."
    )
    assert page.locator("input[type=password]").count() == 0
    shot(page, f"password-page-{viewport}-{theme}")
    assert page.errors == []


@pytest.mark.parametrize(("viewport", "theme"), LOOKS)
def test_with_a_directory_the_sign_up_page_says_to_use_the_company_account(
    open_page, directory_and_server, viewport, theme
):
    from benchmarks.client import ChatClient

    _, server = directory_and_server
    ChatClient(server.base_url).register("admin", "le mot de passe de l'administrateur")  # the first
    page = open_page(viewport, theme)
    page.goto("/register")
    assert page.locator("[data-registration=directory]").inner_text() == (
        "Les comptes de ce serveur sont vos comptes d'entreprise : connectez-vous avec le vôtre. "
        "Tout autre compte est créé par l'administrateur."
    )
    assert page.locator("input[name=password]").count() == 0
    shot(page, f"sign-up-{viewport}-{theme}")
    assert page.errors == []
