"""The figures the scripts write as an answer ends (the chat's speed line, Compare's timings),
in the page's language: "jetons" and decimal commas in French, "tokens" and points in English
(static/js/numbers.js). Headless Chromium, the real server, the Ollama stand-in's scripted model."""

from __future__ import annotations

import re

import pytest

from tests.browser.pages import ANSWER_ENDED, new_chat

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

SCRIPTED_MODEL = "deepseek-r1:1.5b"  # the stand-in's scripted model
LAST_ANSWER = "#messages article[data-role=assistant] >> nth=-1"
TIMEOUT_MS = 30_000
NUMBER = r"\d[\d\u202f\u00a0]*"  # French groups thousands with a narrow space
SPEED_LINES = {
    "fr-FR": re.compile(
        rf"{NUMBER},\d jetons/s · premier jeton après \d+,\d\d s( · réponse après \d+,\d s)?"
    ),
    "en-US": re.compile(r"[\d,]+\.\d tokens/s · first token after \d+\.\d\d s( · answer after \d+\.\d s)?"),
}
COMPARE_FIGURES = {
    "fr-FR": (re.compile(rf"{NUMBER},\d jetons/s"), re.compile(r"\d+,\d\d s")),
    "en-US": (re.compile(r"[\d,]+\.\d tokens/s"), re.compile(r"\d+\.\d\d s")),
}
COLUMN_ENDED = """(name) => {
  const column = document.querySelector(`[data-column="${name}"]`);
  return Boolean(column.dataset.state && column.dataset.state !== "generating"
    && !column.querySelector("[data-markdown]").hasAttribute("data-streaming"));
}"""


@pytest.fixture
def page_in(browser, live_server, logged_in_state):
    """Opens a signed-in page whose browser speaks the given language (the admin never chose one)."""
    contexts = []

    def page_in(locale: str):
        context = browser.new_context(
            locale=locale, base_url=live_server.base_url, storage_state=logged_in_state
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield page_in
    for context in contexts:
        context.close()


@pytest.mark.parametrize("locale", ["fr-FR", "en-US"])
def test_the_chat_speed_line_is_written_in_the_readers_language(page_in, locale):
    page = page_in(locale)
    new_chat(page)
    page.locator("#model").select_option(SCRIPTED_MODEL)
    page.locator("#prompt").fill("Dis bonjour.")
    page.locator("#prompt").press("Enter")
    page.wait_for_function(ANSWER_ENDED, timeout=TIMEOUT_MS)
    written = page.locator(LAST_ANSWER).locator("[data-speed]").inner_text().strip()
    assert SPEED_LINES[locale].fullmatch(written), written
    page.reload()  # the server writes it the same way
    assert page.locator(LAST_ANSWER).locator("[data-speed]").inner_text().strip() == written


@pytest.mark.parametrize("locale", ["fr-FR", "en-US"])
def test_compare_writes_its_timings_in_the_readers_language(page_in, locale):
    page = page_in(locale)
    page.goto("/compare")
    page.wait_for_function("() => window.Markdown !== undefined")
    page.select_option("#model-a", SCRIPTED_MODEL)
    page.select_option("#model-b", SCRIPTED_MODEL)
    page.fill("#prompt", "Dis bonjour.")
    page.click("#send")
    speed, seconds = COMPARE_FIGURES[locale]
    for name in ("a", "b"):
        page.wait_for_function(COLUMN_ENDED, arg=name, timeout=TIMEOUT_MS)
        timings = page.locator(f'[data-column="{name}"] [data-timings]')
        shown = (
            timings.locator("[data-speed]").inner_text(),
            timings.locator("[data-first-token]").inner_text(),
        )
        assert speed.fullmatch(shown[0]) and seconds.fullmatch(shown[1]), shown
