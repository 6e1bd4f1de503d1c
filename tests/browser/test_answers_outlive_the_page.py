"""An answer is the server's, not the page's: reload it, close it, open another tab, go to
another conversation — the answer goes on, and any page of its author shows it, whole and once.
Headless Chromium against the real server and model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.browser.pages import (
    ANSWER_TIMEOUT_MS,
    LAST_ANSWER,
    new_chat,
    normalized,
    wait_for_answer_end,
    wait_for_streaming,
)
from tests.patience import patience, patience_ms

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
LONG = "Write a long story about a lighthouse keeper, a storm and a ship."
BACK_WITHIN = 1.0  # seconds for the text to be back after a reload; asserted with a 3x margin
SHOTS = Path("test-artifacts") / "browser" / "answers"


def send(page, text: str) -> None:
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def shown_length(page) -> int:
    return page.evaluate(
        """() => {
          const answers = document.querySelectorAll("#messages article[data-role=assistant]");
          const answer = answers[answers.length - 1];
          return answer ? answer.querySelector("[data-markdown]").textContent.trim().length : 0;
        }"""
    )


def stored(page, conversation_url: str) -> dict:
    conversation_id = conversation_url.rstrip("/").rsplit("/", 1)[1]
    response = page.request.get(
        f"/conversations/{conversation_id}/messages", headers={"Accept": "application/json"}
    )
    return [m for m in response.json()["messages"] if m["role"] == "assistant"][-1]


def test_a_reload_mid_answer_brings_the_text_back_at_once_and_the_answer_completes(logged_in_page):
    page = logged_in_page
    new_chat(page)
    send(page, LONG)
    wait_for_streaming(page, characters=80)
    before = shown_length(page)
    url = page.url
    reloaded_at = time.monotonic()
    page.reload()
    page.wait_for_function(
        "n => { const a = document.querySelectorAll('#messages article[data-role=assistant]');"
        " const m = a[a.length - 1]; return m && m.querySelector('[data-markdown]')"
        ".textContent.trim().length >= n; }",
        arg=before,
        timeout=patience_ms(10_000),
    )
    took = time.monotonic() - reloaded_at
    print(f"the text was back {took:.2f} s after the reload ({before} characters)")
    assert took < patience(BACK_WITHIN * 3)
    assert not page.locator("#stop").is_hidden(), "the page knows the answer is still being written"
    shown = wait_for_answer_end(page)
    saved = stored(page, url)
    assert shown["state"] == saved["state"] == "complete"
    assert shown["text"] == normalized(page.locator(LAST_ANSWER).locator("[data-markdown]").inner_text())
    assert normalized(saved["content"]).startswith(shown["text"][:40])
    assert len(shown["text"]) >= len(normalized(saved["content"])) * 0.9, "nothing lost"
    assert shown["text"].count(shown["text"][:40]) == 1, "nothing doubled"


def test_a_tab_closed_mid_answer_finds_the_answer_complete_on_return(browser, live_server, logged_in_state):
    context = browser.new_context(
        locale="fr-FR", base_url=live_server.base_url, storage_state=logged_in_state
    )
    try:
        page = context.new_page()
        new_chat(page)
        send(page, LONG)
        wait_for_streaming(page, characters=20)
        url = page.url
        page.close()  # the tab goes away
        time.sleep(1.0)
        again = context.new_page()
        again.goto(url)
        shown = wait_for_answer_end(again)
        saved = stored(again, url)
        assert shown["state"] == saved["state"] == "complete"
        assert shown["text"] == normalized(saved["content"]) or normalized(saved["content"]).startswith(
            shown["text"][:60]
        )
    finally:
        context.close()


def test_the_sidebar_marks_the_conversation_whose_answer_is_being_written(logged_in_page):
    page = logged_in_page
    new_chat(page)
    send(page, LONG)
    wait_for_streaming(page, characters=10)
    conversation_id = page.url.rstrip("/").rsplit("/", 1)[1]
    page.goto("/")  # another conversation: the answer goes on
    mark = page.locator(f'#conversation-list [data-conversation-id="{conversation_id}"] [data-answering]')
    assert mark.is_visible()
    mark.wait_for(state="hidden", timeout=ANSWER_TIMEOUT_MS)  # its end is learned without a reload
    page.goto(f"/c/{conversation_id}")
    assert page.locator(LAST_ANSWER).get_attribute("data-state") == "complete"


def test_a_second_tab_follows_the_same_answer_to_the_same_end(browser, live_server, logged_in_state):
    context = browser.new_context(
        locale="fr-FR", base_url=live_server.base_url, storage_state=logged_in_state
    )
    try:
        first = context.new_page()
        new_chat(first)
        send(first, LONG)
        wait_for_streaming(first, characters=10)
        second = context.new_page()
        second.goto(first.url)
        ends = [wait_for_answer_end(first), wait_for_answer_end(second)]
        assert ends[0]["text"] == ends[1]["text"] and ends[0]["state"] == ends[1]["state"] == "complete"
    finally:
        context.close()


SCREENS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def on_screen(browser, live_server, logged_in_state, screen: str, theme: str):
    """A signed-in French browser context of that size and theme (a phone's touch included)."""
    return browser.new_context(
        locale="fr-FR",
        base_url=live_server.base_url,
        storage_state=logged_in_state,
        viewport=SCREENS[screen],
        color_scheme=theme,
        is_mobile=screen == "phone",
        has_touch=screen == "phone",
    )


@pytest.mark.parametrize("screen", ["desktop", "phone"])
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_screenshots_of_an_answer_followed_again_after_a_reload(
    browser, live_server, logged_in_state, screen, theme
):
    context = on_screen(browser, live_server, logged_in_state, screen, theme)
    try:
        page = context.new_page()
        new_chat(page)
        send(page, LONG)
        wait_for_streaming(page, characters=60)
        page.reload()
        wait_for_streaming(page, characters=60)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"followed-after-reload-{screen}-{theme}.png"))
        wait_for_answer_end(page)
    finally:
        context.close()


@pytest.mark.parametrize("screen", ["desktop", "phone"])
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_admin_sees_the_answers_being_written_and_can_stop_one(
    browser, live_server, logged_in_state, screen, theme
):
    context = on_screen(browser, live_server, logged_in_state, screen, theme)
    try:
        chat = context.new_page()
        new_chat(chat)
        send(chat, LONG)
        wait_for_streaming(chat, characters=10)
        admin = context.new_page()
        admin.goto("/admin/models")
        row = admin.locator("[data-answers] tr[data-answer-id]")
        assert row.count() == 1 and "SmolLM2" in row.inner_text()
        SHOTS.mkdir(parents=True, exist_ok=True)
        admin.screenshot(
            path=str(SHOTS / f"admin-answers-being-written-{screen}-{theme}.png"), full_page=True
        )
        admin.on("dialog", lambda dialog: dialog.accept())  # "Stop this answer?"
        with admin.expect_navigation():
            row.locator("button").click()
        assert "Aucune réponse n’est en cours d’écriture." in admin.locator("#answers").inner_text()
        shown = wait_for_answer_end(chat, timeout=patience_ms(10_000))  # Stop's own limit
        assert shown["state"] == "stopped"
        assert (
            "Arrêtée par l’administrateur." in chat.locator(LAST_ANSWER).locator("[data-error]").inner_text()
        )
    finally:
        context.close()
