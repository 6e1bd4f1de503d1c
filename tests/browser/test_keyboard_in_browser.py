"""The chat page for someone on the keyboard or a screen reader, and what it keeps for them:
drafts, shortcuts, Esc doing one thing at a time, a name on every control."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest

from tests.browser.pages import (
    LAST_ANSWER,
    new_chat,
    register_through_form,
    wait_for_answer_end,
    wait_for_streaming,
)
from tests.patience import patience_ms

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
from playwright.sync_api import expect  # noqa: E402

PASSWORD = "un mot de passe assez long"
LONG_STORY = "Écris une très longue histoire de 500 mots sur un dragon et une princesse."
STOP_TIMEOUT_MS = patience_ms(10_000)  # Stop ends an answer within seconds: part of the behaviour

# Every control a user can reach, and the name a screen reader gives it (aria-label, a label,
# its text, or its title); hidden ones count too, as they show later.
UNNAMED_CONTROLS = """() => {
  const label = (el) => el.labels && el.labels[0] && el.labels[0].textContent;
  const name = (el) => (el.getAttribute("aria-label") || label(el) || el.textContent
    || el.getAttribute("title") || el.getAttribute("placeholder") || "").trim();
  const controls = "button, a[href], input:not([type=hidden]), select, textarea, summary";
  return [...document.querySelectorAll(controls)]
    .filter((el) => !name(el))
    .map((el) => el.outerHTML.slice(0, 120));
}"""


def new_user(page) -> str:
    username = f"clavier-{uuid.uuid4().hex[:8]}"
    register_through_form(page, username, PASSWORD)
    return username


def start_long_answer(page) -> None:
    """Send a request for a long story and wait until it is streaming."""
    page.locator("#prompt").fill(LONG_STORY)
    page.locator("#prompt").press("Enter")
    wait_for_streaming(page, 10)


def test_a_message_being_typed_survives_a_reload_and_is_forgotten_once_sent_and_at_sign_out(page):
    username = new_user(page)
    new_chat(page)
    page.locator("#prompt").fill("Un brouillon à ne pas perdre")
    page.reload()
    expect(page.locator("#prompt")).to_have_value("Un brouillon à ne pas perdre")
    # Sent: a reload, even while the answer streams, does not offer it a second time.
    page.locator("#prompt").press("Enter")
    page.locator("#messages article[data-role=user]").wait_for()
    wait_for_answer_end(page)
    page.goto("/")
    expect(page.locator("#prompt")).to_have_value("")
    page.reload()
    expect(page.locator("#prompt")).to_have_value("")
    # Typed, then the user signs out: the next person at this computer does not see it.
    page.locator("#prompt").fill("Une phrase privée")
    page.locator("[data-sign-out] button").click()
    page.wait_for_url("**/login**")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    expect(page.locator("#prompt")).to_have_value("")


def test_escape_in_the_search_box_clears_it_and_does_not_stop_the_answer(page):
    new_user(page)
    new_chat(page)
    start_long_answer(page)
    stops: list[str] = []
    page.on("request", lambda request: stops.append(request.url) if request.url.endswith("/stop") else None)
    search = page.locator("[data-search-input]")
    search.fill("dragon")
    search.press("Escape")
    expect(search).to_have_value("")
    page.wait_for_timeout(500)
    # No Stop was asked (a loaded server may not have acted on one yet), and the answer goes on.
    assert stops == [], "Esc in the search asked to stop the answer"
    assert page.locator(LAST_ANSWER).get_attribute("data-state") == "generating", (
        "Esc in the search stopped it"
    )
    # Esc from the message box does stop it.
    page.locator("#prompt").press("Escape")
    assert wait_for_answer_end(page, timeout=STOP_TIMEOUT_MS)["state"] == "stopped"


def test_ctrl_shift_o_opens_a_new_chat_even_while_an_answer_is_written_which_goes_on(page):
    new_user(page)
    new_chat(page)
    start_long_answer(page)
    conversation_url = page.url
    with page.expect_navigation():
        page.keyboard.press("Control+Shift+O")
    assert urlsplit(page.url).path == "/", page.url  # the new-chat page
    expect(page.locator("[data-empty]")).to_be_visible()
    page.goto(conversation_url)  # the answer went on without the page: followed again here
    assert page.locator(LAST_ANSWER).get_attribute("data-state") == "generating"
    page.locator("#prompt").press("Escape")
    assert wait_for_answer_end(page, timeout=STOP_TIMEOUT_MS)["state"] == "stopped"


def test_every_control_of_the_chat_settings_and_search_pages_has_a_name_for_screen_readers(page):
    new_user(page)
    new_chat(page)
    page.locator("#prompt").fill("Dis bonjour.")
    page.locator("#prompt").press("Enter")
    wait_for_answer_end(page)
    page.reload()  # the conversation page as the server renders it, with its menus
    for url in (page.url, "/settings", "/search?q=bonjour"):
        page.goto(url)
        assert page.evaluate(UNNAMED_CONTROLS) == [], url


def test_the_keyboard_alone_reaches_a_messages_actions_and_rates_it(page):
    new_user(page)
    new_chat(page)
    page.locator("#prompt").fill("Dis bonjour.")
    page.locator("#prompt").press("Enter")
    wait_for_answer_end(page)
    # Tab from the message box backwards reaches the answer's last action: thumbs down.
    page.locator("#prompt").focus()
    for _ in range(40):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("() => document.activeElement.dataset.action") == "down":
            break
    else:
        pytest.fail("thumbs down was never reached with the keyboard")
    page.keyboard.press("Enter")
    expect(page.locator(LAST_ANSWER).locator('[data-action="down"]')).to_have_attribute(
        "aria-pressed", "true"
    )
