"""Fixtures for the browser tests: one real server, one admin account, one headless Chromium.

The server is the real one (`flask db upgrade`, then waitress) with the real embedded model, on
127.0.0.1; the browser is Debian's chromium driven by Playwright (its own browser download is
never used). Nothing here talks to anything but the loopback interface.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` lives at the repository root
    sys.path.insert(0, str(ROOT))

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "un mot de passe assez long"


def pytest_collection_modifyitems(config, items) -> None:
    """Every test of this folder is a browser test (`-m browser`); without Debian's chromium they
    are skipped, saying why."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(pytest.mark.skip(reason=f"{CHROMIUM} is missing: install Debian's chromium"))


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, ollama_host):
    from benchmarks.server import LiveServer

    # Temperature 0 and a fixed seed: the same prompt gets the same answer on every run, so
    # the prompts below reliably yield a long enough answer. The Ollama stand-in (shared with
    # the engine tests) adds its models, the scripted thinking one among them.
    env = {"GENERATION_TEMPERATURE": "0", "GENERATION_SEED": "0", "OLLAMA_HOSTS": ollama_host.url}
    with LiveServer(tmp_path_factory.mktemp("browser-instance"), env) as server:
        yield server


@pytest.fixture(scope="session")
def admin(live_server) -> tuple[str, str]:
    """The first account of the server, hence its administrator: (username, password)."""
    from benchmarks.client import ChatClient

    client = ChatClient(live_server.base_url)
    response = client.register(ADMIN_USERNAME, ADMIN_PASSWORD)
    assert response.ok, f"registering the admin failed: {response.status_code}"
    assert client.login(ADMIN_USERNAME, ADMIN_PASSWORD).ok
    return ADMIN_USERNAME, ADMIN_PASSWORD


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium to run the browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def log_in_through_form(page, base_url: str, username: str, password: str) -> None:
    """Fill in and submit the real login form; wait for the chat page."""
    response = page.goto(f"{base_url}/login")
    assert response is not None and response.ok, f"/login answered {response and response.status}"
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    page.wait_for_selector("#prompt", timeout=10_000)


@pytest.fixture
def log_in(live_server, admin):
    """Log a page in as the admin through the real login form."""
    return lambda page: log_in_through_form(page, live_server.base_url, *admin)


@pytest.fixture(scope="session")
def logged_in_state(browser, live_server, admin) -> dict:
    """Cookies of a session opened once through the login form, for the tests not about logging in."""
    context = browser.new_context(locale="fr-FR")
    try:
        page = context.new_page()
        log_in_through_form(page, live_server.base_url, *admin)
        return context.storage_state()
    finally:
        context.close()


@pytest.fixture
def open_page(browser, live_server, logged_in_state):
    """Signed-in pages as the admin, in the given size (1280×800 unless given) and theme, closed
    after. Files with pages of their own kind define their own `open_page`."""
    contexts = []

    def open_page(viewport=None, dark=False):
        context = browser.new_context(
            locale="fr-FR",
            base_url=live_server.base_url,
            viewport=viewport or {"width": 1280, "height": 800},
            storage_state=logged_in_state,
            color_scheme="dark" if dark else "light",
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def context(browser, live_server) -> Iterator:
    """A fresh browser profile (no cookies), French like the app's default."""
    context = browser.new_context(
        locale="fr-FR", base_url=live_server.base_url, viewport={"width": 1280, "height": 800}
    )
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def logged_in_page(browser, live_server, logged_in_state) -> Iterator:
    """A page of a browser profile that is already signed in as the admin."""
    context = browser.new_context(
        locale="fr-FR",
        base_url=live_server.base_url,
        viewport={"width": 1280, "height": 800},
        storage_state=logged_in_state,
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def scripted_model(standin):
    """The Ollama stand-in's scripted models for one test, reset to their defaults after it."""
    yield standin
    standin.reset()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
