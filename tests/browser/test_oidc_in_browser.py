"""Signing in with the company's identity provider, in Chromium: the sign-in page's button,
the provider's own login page (tests/oidc_server.py: npm's oidc-provider over HTTPS), and back
to the page asked for, signed in; a sign-in cancelled there is told on the sign-in page.

Screenshots of the sign-in page with its SSO button, and of the cancelled sign-in, at 1280×800
and 390×844, light and dark, in test-artifacts/browser/oidc/.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.pages import VIEWPORTS, fresh_pages, full_page_shot
from tests.oidc_server import OidcProvider, installed

SHOTS = ARTIFACTS / "oidc"
LOOKS = [(viewport, theme) for viewport in VIEWPORTS for theme in ("light", "dark")]


@pytest.fixture(scope="module")
def provider_and_server(tmp_path_factory):
    """A server of its own with OIDC set (the shared one has none), and its provider."""
    from benchmarks.server import LiveServer

    reason = installed()
    if reason:
        pytest.skip(reason)
    server = LiveServer(tmp_path_factory.mktemp("oidc-instance"))
    with OidcProvider(redirect_uris=[f"{server.base_url}/auth/oidc/callback"]) as provider:
        server.env.update(provider.settings(OIDC_PROVIDER_NAME="Microsoft"))
        with server:
            yield provider, server


@pytest.fixture
def open_page(browser, provider_and_server):
    """Pages in fresh French profiles, at a viewport and in a theme; closed after the test. The
    provider's test certificate is the browser's to trust or not: it is let through here (the
    server's own check of it is tests/test_oidc_signin.py's)."""
    _, server = provider_and_server
    with fresh_pages(browser, server.base_url, ignore_https_errors=True) as open_page:
        yield open_page


def shot(page, name: str) -> None:
    full_page_shot(page, SHOTS, name)


@pytest.mark.parametrize(("viewport", "theme"), LOOKS)
def test_the_sign_in_page_offers_the_company_provider_above_the_local_form(open_page, viewport, theme):
    page = open_page(viewport, theme)
    page.goto("/login")
    button = page.get_by_role("link", name="Se connecter avec Microsoft")
    assert button.is_visible()
    assert page.locator("input[name=password]").is_visible()  # local accounts still sign in
    shot(page, f"sign-in-{viewport}-{theme}")
    assert page.errors == []


def test_signing_in_through_the_provider_returns_to_the_page_asked_for(open_page, provider_and_server):
    provider, _ = provider_and_server
    page = open_page()
    page.goto("/settings")  # not signed in: sent to sign in, the page kept in ?next=
    assert "/login" in page.url
    page.get_by_role("link", name="Se connecter avec Microsoft").click()
    page.wait_for_url(f"{provider.issuer}/interaction/**")
    page.fill("input[name=login]", "bob")
    page.fill("input[name=password]", provider.people["bob"].password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/settings")  # a page only a signed-in person sees
    page.goto("/")
    assert page.locator('span[title="bob"]').is_visible()  # the account's name in the sidebar
    shot(page, "signed-in-desktop-light")
    assert page.errors == []


@pytest.mark.parametrize(("viewport", "theme"), LOOKS)
def test_a_sign_in_cancelled_at_the_provider_is_told_on_the_sign_in_page(
    open_page, provider_and_server, viewport, theme
):
    provider, _ = provider_and_server
    page = open_page(viewport, theme)
    page.goto("/login")
    page.get_by_role("link", name="Se connecter avec Microsoft").click()
    page.wait_for_url(f"{provider.issuer}/interaction/**")
    page.get_by_role("link", name="Cancel").click()
    page.wait_for_url("**/auth/oidc/callback**")
    assert page.get_by_role("alert").inner_text() == "Connexion annulée chez le fournisseur d'identité."
    shot(page, f"cancelled-{viewport}-{theme}")
