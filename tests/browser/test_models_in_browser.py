"""Models as a user and the admin see them: a reasoning model's thinking, the admin's choices.

Headless Chromium against the real server, whose Ollama host is the stand-in of
tests/ollama_server.py: "deepseek-r1:1.5b" there is scripted and answers at once, so these tests
never wait for the real model.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from tests.browser.pages import ANSWER_ENDED, new_chat, normalized, register_through_form
from tests.ollama_server import SCRIPTED_ANSWER, SCRIPTED_THINKING

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
expect = sync_api.expect

REASONING_MODEL = "deepseek-r1:1.5b"
SMALL_MODEL = "smollm2:135m"
ANSWER = "".join(SCRIPTED_ANSWER)
THINKING = "".join(SCRIPTED_THINKING)
TIMEOUT_MS = 20_000  # the scripted model answers in a fraction of a second; the machine is slow
LAST_ANSWER = "#messages article[data-role=assistant] >> nth=-1"
USER_PASSWORD = "une phrase de passe assez longue"

# Installed before a message is sent: on every change under #messages, note what the newest
# answer shows of its thinking and of its text. Polling from Python could miss the steps.
RECORD_THINKING = """() => {
  window.__seen = [];
  const messages = document.getElementById("messages");
  new MutationObserver(() => {
    const answers = messages.querySelectorAll("article[data-role=assistant]");
    const answer = answers[answers.length - 1];
    if (!answer) return;
    const block = answer.querySelector("[data-thinking-block]");
    window.__seen.push({
      state: answer.dataset.state || "",
      shown: !block.classList.contains("hidden"),
      open: block.open,
      summary: answer.querySelector("[data-thinking-summary]").textContent.trim(),
      thinking: answer.querySelector("[data-thinking]").textContent.length,
      answer: answer.querySelector("[data-markdown]").textContent.trim().length,
    });
  }).observe(messages, { subtree: true, childList: true, characterData: true, attributes: true });
}"""


def send(page, text: str):
    """Send a message, wait for its answer to end; return the answer's <article>."""
    page.locator("#prompt").fill(text)
    page.locator("#prompt").press("Enter")
    page.wait_for_function(ANSWER_ENDED, timeout=TIMEOUT_MS)
    page.wait_for_selector("#send:not(.hidden)", timeout=5_000)
    answer = page.locator(LAST_ANSWER)
    expect(answer).to_have_attribute("data-state", "complete")
    return page.locator(f'#messages article[data-message-id="{answer.get_attribute("data-message-id")}"]')


def i18n(page, key: str) -> str:
    """A text the chat page's script shows, in the page's language."""
    return page.evaluate("k => JSON.parse(document.getElementById('chat').dataset.i18n)[k]", key)


def thought_for(page) -> re.Pattern:
    """The pattern of "Thought for N s", as the page words it."""
    return re.compile(re.escape(i18n(page, "thought")).replace(re.escape("{seconds}"), r"\d+(?:[.,]\d+)?"))


def pick_reasoning_model(page) -> None:
    page.locator("#model").select_option(REASONING_MODEL)
    expect(page.locator("#think")).to_be_visible()
    expect(page.locator("#think")).to_be_checked()  # a reasoning model thinks unless told not to


def expect_folded_thinking(answer, summary: re.Pattern) -> None:
    """The thinking is there, folded away: a summary line, the text only after a click."""
    block = answer.locator("[data-thinking-block]")
    expect(block).to_be_visible()
    expect(block).to_have_js_property("open", False)
    expect(answer.locator("[data-thinking-summary]")).to_have_text(summary)
    expect(answer.locator("[data-thinking]")).to_be_hidden()
    expect(answer.locator("[data-markdown]")).to_have_text(ANSWER)


def test_a_deepseek_r1_answer_shows_its_thinking_folded_away_from_the_answer_even_after_a_reload(
    logged_in_page, standin, artifacts_dir: Path
):
    page = logged_in_page
    new_chat(page)
    pick_reasoning_model(page)
    page.evaluate(RECORD_THINKING)

    answer = send(page, "Réponds en une phrase.")

    thinking_now, summary = i18n(page, "thinking_now"), thought_for(page)
    seen = page.evaluate("window.__seen")
    while_thinking = [s for s in seen if s["state"] == "generating" and s["thinking"]]
    assert while_thinking, f"the thinking should show while the answer is written: {seen}"
    assert not any(s["open"] for s in seen), f"the thinking stays folded while it streams: {seen}"
    assert any(s["shown"] and s["summary"] == thinking_now and not s["answer"] for s in while_thinking), (
        f"first the model thinks, and says so, before any answer text: {seen}"
    )
    lengths = [s["thinking"] for s in while_thinking]
    assert lengths == sorted(lengths), f"the thinking only grows: {lengths}"
    expect_folded_thinking(answer, summary)
    page.screenshot(path=str(artifacts_dir / "thinking-folded.png"), full_page=True)

    answer.locator("[data-thinking-summary]").click()
    expect(answer.locator("[data-thinking]")).to_be_visible()
    assert normalized(answer.locator("[data-thinking]").inner_text()) == THINKING
    assert normalized(answer.locator("[data-markdown]").inner_text()) == ANSWER, "no thinking in the answer"

    page.reload()
    answer.locator("[data-markdown][data-rendered]").wait_for()
    expect_folded_thinking(answer, summary)
    answer.locator("[data-thinking-summary]").click()
    expect(answer.locator("[data-thinking]")).to_be_visible()
    assert normalized(answer.locator("[data-thinking]").inner_text()) == THINKING
    page.screenshot(path=str(artifacts_dir / "thinking-unfolded-after-reload.png"), full_page=True)


def test_with_thinking_switched_off_the_next_answer_comes_without_thinking(logged_in_page, standin):
    page = logged_in_page
    new_chat(page)
    pick_reasoning_model(page)
    first = send(page, "Première question.")
    expect(first.locator("[data-thinking-block]")).to_be_visible()

    with page.expect_response(lambda r: r.url.endswith("/thinking") and r.request.method == "POST") as saved:
        page.locator("#think").uncheck()
    assert saved.value.ok, saved.value.status
    second = send(page, "Deuxième question.")

    expect(second.locator("[data-markdown]")).to_have_text(ANSWER)
    expect(second.locator("[data-thinking-block]")).to_be_hidden()
    assert standin.bodies("/api/chat")[-1]["think"] is False, "the model was told not to think"

    page.reload()  # the choice belongs to the conversation
    second.locator("[data-markdown][data-rendered]").wait_for()
    expect(page.locator("#think")).not_to_be_checked()
    expect(second.locator("[data-thinking-block]")).to_be_hidden()
    expect(first.locator("[data-thinking-block]")).to_be_visible()


def model_row(page, model_id: str):
    return page.locator(f'tr[data-model-id="{model_id}"]')


def press_admin_button(page, model_id: str, action: str) -> None:
    """Press one of a model's buttons on /admin/models ("enabled": Disable or Enable, "default")."""
    with page.expect_navigation():
        model_row(page, model_id).locator(f'form[action$="/models/{action}"] button').click()
    page.wait_for_selector("tr[data-model-id]")


def offers(page, model_id: str):
    return page.locator(f'#model option[value="{model_id}"]')


def restore_models(page, default_id: str) -> None:
    """Leave the shared server as it was: the reasoning model offered, the same default."""
    page.goto("/admin/models")
    enable = model_row(page, REASONING_MODEL).locator('form:has(input[name=enabled][value="1"]) button')
    if enable.count():
        press_admin_button(page, REASONING_MODEL, "enabled")
    if not model_row(page, default_id).locator("[data-default]").count():
        press_admin_button(page, default_id, "default")


def test_the_admin_switches_what_users_get_and_the_very_next_message_obeys_without_a_restart(
    browser, live_server, logged_in_page, standin, artifacts_dir: Path
):
    admin = logged_in_page
    user_context = browser.new_context(
        locale="fr-FR", base_url=live_server.base_url, viewport={"width": 1280, "height": 800}
    )
    user_context.set_default_timeout(15_000)
    try:
        user = user_context.new_page()
        register_through_form(user, f"user-{uuid.uuid4().hex[:8]}", USER_PASSWORD)
        new_chat(user)
        expect(offers(user, REASONING_MODEL)).to_have_count(1)
        expect(user.locator('#sidebar a[href$="/admin/models"]')).to_have_count(0)  # not an admin
        assert user.goto("/admin/models").status == 403
        new_chat(user)

        new_chat(admin)
        with admin.expect_navigation():
            admin.locator('#sidebar a[href$="/admin/models"]').click()
        default_id = admin.locator("tr[data-model-id]:has([data-default])").get_attribute("data-model-id")
        assert default_id and default_id != SMALL_MODEL, f"the test needs another default: {default_id}"
        try:
            press_admin_button(admin, REASONING_MODEL, "enabled")  # Disable
            expect(model_row(admin, REASONING_MODEL).locator("input[name=enabled]")).to_have_value("1")

            # The user's page, opened before, still lists it: the next message is refused, kept.
            user.locator("#model").select_option(REASONING_MODEL)
            user.locator("#prompt").fill("Encore là ?")
            user.locator("#prompt").press("Enter")
            expect(user.locator("#composer-error")).to_be_visible()
            expect(user.locator("#composer-error")).to_contain_text(REASONING_MODEL)
            expect(user.locator("#prompt")).to_have_value("Encore là ?")
            expect(user.locator("#messages article")).to_have_count(0)
            new_chat(user)
            expect(offers(user, REASONING_MODEL)).to_have_count(0)
            expect(user.locator("#model")).to_have_value(default_id)

            press_admin_button(admin, SMALL_MODEL, "default")
            expect(model_row(admin, SMALL_MODEL).locator("[data-default]")).to_be_visible()
            expect(model_row(admin, default_id).locator("[data-default]")).to_have_count(0)
            admin.screenshot(path=str(artifacts_dir / "admin-models.png"), full_page=True)
            new_chat(user)
            expect(user.locator("#model")).to_have_value(SMALL_MODEL)

            press_admin_button(admin, REASONING_MODEL, "enabled")  # Enable
            new_chat(user)
            expect(offers(user, REASONING_MODEL)).to_have_count(1)
        finally:
            restore_models(admin, default_id)
        new_chat(user)
        expect(user.locator("#model")).to_have_value(default_id)
    finally:
        user_context.close()


DISPLAY_NAME = "Petit et rapide"
DESCRIPTION = "Le plus léger : répond vite aux questions simples."
SCREENS = {
    "1280": {"viewport": {"width": 1280, "height": 800}},
    "390": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}


def save_model_settings(page, model_id: str, **fields: str) -> None:
    """Fill the model's settings form on the admin's page and save it."""
    page.goto(f"/admin/models/settings?model={model_id}")
    for name, value in fields.items():
        page.locator(f"input[name={name}]").fill(value)
    with page.expect_navigation():
        page.locator("main form button").last.click()


def test_users_read_the_display_name_and_description_the_admin_gave_a_model(
    browser, live_server, logged_in_page, logged_in_state, standin, artifacts_dir: Path
):
    admin = logged_in_page
    admin.set_viewport_size({"width": 1280, "height": 600})
    try:
        save_model_settings(admin, SMALL_MODEL, display_name=DISPLAY_NAME, description=DESCRIPTION)
        # Back at the model's row, marked, rather than at the top of a long page.
        assert admin.url.endswith(f"/admin/models#model-{SMALL_MODEL}")
        row = model_row(admin, SMALL_MODEL)
        expect(row.locator("[data-display-name]")).to_have_text(DISPLAY_NAME)
        expect(row).to_be_in_viewport()
        assert admin.evaluate("window.scrollY") > 0, "the page came back scrolled to the row"
        assert "site-packages" not in admin.locator("main").inner_text()

        for screen, device in SCREENS.items():
            for theme in ("light", "dark"):
                context = browser.new_context(
                    locale="fr-FR",
                    base_url=live_server.base_url,
                    storage_state=logged_in_state,
                    color_scheme=theme,
                    **device,
                )
                context.set_default_timeout(15_000)
                page = context.new_page()
                page.goto("/admin/models")
                shown = model_row(page, SMALL_MODEL)
                expect(shown.locator("[data-description]")).to_have_text(DESCRIPTION)
                page.screenshot(path=str(artifacts_dir / f"models-page-{screen}-{theme}.png"), full_page=True)

                new_chat(page)
                page.locator("#model").select_option(SMALL_MODEL)
                expect(page.locator(f'#model option[value="{SMALL_MODEL}"]')).to_have_text(DISPLAY_NAME)
                expect(page.locator("[data-model-about-name]")).to_have_text(DISPLAY_NAME)
                expect(page.locator("[data-model-about-description]")).to_have_text(f" · {DESCRIPTION}")
                # Another model, without a display name, is named from its id, not shown raw.
                expect(page.locator(f'#model option[value="{REASONING_MODEL}"]')).to_have_text(
                    "deepseek-r1 (1.5b)"
                )
                page.screenshot(path=str(artifacts_dir / f"model-picker-{screen}-{theme}.png"))
                context.close()

        new_chat(admin)
        admin.locator("#model").select_option(SMALL_MODEL)
        answer = send(admin, "Bonjour")
        expect(answer.locator("[data-model]")).to_have_text(DISPLAY_NAME)  # under the answer too
        admin.reload()
        expect(answer.locator("[data-model]")).to_have_text(DISPLAY_NAME)
    finally:
        save_model_settings(admin, SMALL_MODEL, display_name="", description="")
