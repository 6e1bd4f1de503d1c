"""Long text boxes with a limit, as a user meets them in headless Chromium: a paste longer than
the limit is kept whole, counted, and refused with a message when sent, in the Compare prompt
and in the system prompt boxes (the chat composer's own test is in test_chat_states_in_browser).

The server is the real one; nothing is sent to a model (a refused text never leaves the page).
"""

from __future__ import annotations

import re

import pytest

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
from playwright.sync_api import expect  # noqa: E402

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
MESSAGE_LIMIT = 20_000  # MAX_MESSAGE_CHARS: the live server keeps the default
PRESET_PROMPT_LIMIT = 8_000  # a preset's system prompt (app/settings/forms.py)
NBSP = re.compile(r"[\u00a0\u202f]")


def fr(number: int) -> str:
    """A number as French writes it, its group separator read as a plain space."""
    return f"{number:,}".replace(",", " ")


def text_of(locator) -> str:
    return NBSP.sub(" ", locator.inner_text()).strip()


@pytest.fixture
def open_page(browser, live_server, logged_in_state):
    """Signed-in pages as the admin, in French, closed after; POSTs the page makes are recorded."""
    contexts = []

    def open_page(viewport=DESKTOP):
        context = browser.new_context(
            locale="fr-FR", base_url=live_server.base_url, viewport=viewport, storage_state=logged_in_state
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.posts = []
        page.on("request", lambda r: page.posts.append(r.url) if r.method == "POST" else None)
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_long_paste_into_the_compare_prompt_is_kept_whole_counted_and_refused_with_a_message(
    viewport, open_page, artifacts_dir
):
    page = open_page(viewport)
    page.goto("/compare")
    prompt = page.locator("#prompt:not([disabled])")
    prompt.click()
    pasted = "a" * 29_900
    page.keyboard.insert_text(pasted)  # a paste, as a user makes it: nothing is cut
    assert prompt.input_value() == pasted

    counter = page.locator("#prompt-count")
    expect(counter).to_be_visible()
    assert text_of(counter) == f"{fr(29_900)} / {fr(MESSAGE_LIMIT)} caractères"
    expect(counter).to_have_attribute("data-over", "")

    prompt.press("Enter")
    error = page.locator("#compare-error")
    expect(error).to_be_visible()
    assert text_of(error) == (
        f"Ce message fait {fr(29_900)} caractères, {fr(MESSAGE_LIMIT)} au plus : raccourcissez-le, "
        "ou envoyez-le en plusieurs fois."
    )
    assert prompt.input_value() == pasted, "the message stays in the box, whole"
    page.wait_for_timeout(300)  # a request the refusal failed to stop would have left by now
    assert page.posts == [], "nothing is sent to any model"
    expect(page.locator("#send")).to_be_visible()  # not busy: nothing started
    for theme in ("light", "dark"):
        page.emulate_media(color_scheme=theme)
        page.screenshot(path=str(artifacts_dir / f"compare-too-long-{viewport['width']}-{theme}.png"))

    # Shortened under the limit, the count stays near it and the refusal goes away.
    prompt.fill("a" * (MESSAGE_LIMIT - 10))
    expect(error).to_be_hidden()
    assert counter.get_attribute("data-over") is None


def test_a_system_prompt_over_its_limit_in_the_preset_form_is_kept_whole_and_refused_with_a_message(
    open_page, artifacts_dir
):
    page = open_page()
    page.goto("/settings")
    form = page.locator("form[data-new-preset]")
    form.locator("input[name=name]").fill("Trop long")
    box = form.locator("textarea[name=system_prompt]")
    box.click()
    pasted = "b" * (PRESET_PROMPT_LIMIT + 100)
    page.keyboard.insert_text(pasted)
    assert box.input_value() == pasted, "nothing is cut"
    counter = form.locator("[data-over]")
    expect(counter).to_be_visible()
    assert text_of(counter) == f"{fr(PRESET_PROMPT_LIMIT + 100)} / {fr(PRESET_PROMPT_LIMIT)} caractères"

    form.locator("button[type=submit]").click()
    error = form.locator("[role=alert]")
    expect(error).to_be_visible()
    assert text_of(error) == (
        f"Ce texte fait {fr(PRESET_PROMPT_LIMIT + 100)} caractères, {fr(PRESET_PROMPT_LIMIT)} au plus : "
        "raccourcissez-le."
    )
    assert box.input_value() == pasted, "the text stays in the box, whole"
    assert box.get_attribute("aria-invalid") == "true"
    page.wait_for_timeout(300)  # a form the refusal failed to stop would have been posted by now
    assert page.posts == [], "the form is not sent"
    for theme in ("light", "dark"):
        page.emulate_media(color_scheme=theme)
        box.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts_dir / f"preset-prompt-too-long-1280-{theme}.png"))


def test_a_conversation_system_prompt_over_its_limit_is_kept_whole_and_not_saved(open_page):
    page = open_page()
    page.goto("/")
    page.wait_for_selector("#prompt:not([disabled])")
    page.locator("[data-settings-toggle]").click()
    box = page.locator("#system-prompt")
    box.click()
    pasted = "c" * 8_100  # SYSTEM_PROMPT_CHARS is 8000
    page.keyboard.insert_text(pasted)
    assert box.input_value() == pasted, "nothing is cut"
    page.locator("[data-settings-form] button").last.click()
    error = page.locator("#system-prompt-chars-error")
    expect(error).to_be_visible()
    assert text_of(error) == f"Ce texte fait {fr(8_100)} caractères, {fr(8_000)} au plus : raccourcissez-le."
    assert box.input_value() == pasted
    expect(page.locator("[data-settings-status]")).to_have_text("")  # neither saved nor "saved later"


def test_an_edited_message_over_the_limit_is_kept_whole_counted_and_refused_under_its_box(open_page, standin):
    from tests.browser.test_chat_states_in_browser import ended, send, start_chat

    page = open_page()
    start_chat(page)
    standin.script = ["Bonjour", "."]
    try:
        send(page, "Une question.")
        ended(page)
    finally:
        standin.reset()
    question = page.locator("#messages article[data-role=user]").last
    question.hover()
    question.locator('[data-action="edit"]').click()
    box = question.locator("form[data-edit-form] textarea")
    box.press("End")
    pasted = "d" * MESSAGE_LIMIT
    page.keyboard.insert_text(pasted)
    edited = "Une question." + pasted
    assert box.input_value() == edited, "nothing is cut"
    expect(question.locator("[data-over]")).to_be_visible()

    page.posts.clear()
    box.press("Enter")
    error = question.locator("[role=alert]")
    expect(error).to_be_visible()
    assert text_of(error) == (
        f"Ce message fait {fr(MESSAGE_LIMIT + 13)} caractères, {fr(MESSAGE_LIMIT)} au plus : "
        "raccourcissez-le, ou envoyez-le en plusieurs fois."
    )
    assert box.input_value() == edited, "the edited message stays in its box, whole"
    page.wait_for_timeout(300)  # an edit the refusal failed to stop would have been posted by now
    assert page.posts == [], "the edit is not sent"
