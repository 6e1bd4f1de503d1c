"""The chat page's less happy states, as a user meets them in headless Chromium: a message too
long for the server, a new chat with presets, an answer that ends inside its thinking, a wait
with nothing to read, an answer stopped before its first word, copying, a failed answer.

The model is the Ollama stand-in's scripted one (told what to say, or to fall silent), the
server the real one: these tests are about the page. The page's clock is Playwright's, moved
on where a test is about seconds passing, so no verdict depends on the machine's speed.
"""

from __future__ import annotations

import re
import uuid

import pytest

from tests.browser.pages import ANSWER_ENDED, new_chat, register_through_form, wait_for_answer_end

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
from playwright.sync_api import expect  # noqa: E402

SCRIPTED_MODEL = "deepseek-r1:1.5b"  # the stand-in's scripted model
LAST_ANSWER = "#messages article[data-role=assistant] >> nth=-1"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 30_000
LIMIT = 20_000  # MAX_MESSAGE_CHARS: the live server keeps the default
NBSP = re.compile(r"[\u00a0\u202f]")


def fr(number: int) -> str:
    """A number as French writes it, its group separator read as a plain space."""
    return f"{number:,}".replace(",", " ")


@pytest.fixture
def open_page(browser, live_server, logged_in_state):
    """Signed-in pages as the admin (or, with `storage_state=None`, signed out), closed after."""
    contexts = []

    def open_page(viewport=DESKTOP, permissions=None, storage_state=logged_in_state, dark=False):
        context = browser.new_context(
            locale="fr-FR",
            base_url=live_server.base_url,
            viewport=viewport,
            storage_state=storage_state,
            permissions=permissions or [],
            color_scheme="dark" if dark else "light",
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        for page in context.pages:  # an answer left waiting (a failed test) must not hold the model
            if page.locator("#stop").count() and page.locator("#stop").is_visible():
                page.locator("#stop").click()
                page.wait_for_selector("#send:not(.hidden)", timeout=10_000)
        context.close()


def start_chat(page) -> None:
    new_chat(page)
    page.locator("#model").select_option(SCRIPTED_MODEL)


def send(page, text: str = "Une question.") -> None:
    page.locator("#prompt").fill(text)
    page.locator("#prompt").press("Enter")


def ended(page, count: int = 1) -> None:
    page.wait_for_function(
        """(count) => document.querySelectorAll("#messages article[data-role=assistant]").length === count
             && ("""
        + ANSWER_ENDED
        + """)()""",
        arg=count,
        timeout=TIMEOUT_MS,
    )
    page.wait_for_selector("#send:not(.hidden)")


def i18n(page, key: str) -> str:
    return page.evaluate("(k) => JSON.parse(document.getElementById('chat').dataset.i18n)[k]", key)


def status_text(page) -> str:
    return page.locator(f"{LAST_ANSWER} >> [data-status]").inner_text().strip()


# -- 1. a message too long is counted, refused, and kept whole -------------------------------------
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_paste_over_the_limit_is_kept_whole_counted_and_refused_with_a_message(
    viewport, open_page, artifacts_dir
):
    page = open_page(viewport=viewport)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    new_chat(page)
    limit = LIMIT
    page.locator("#prompt").click()
    page.keyboard.insert_text("a" * (limit - 100))  # typed or pasted, as a user does
    page.keyboard.insert_text("b" * 10_000)  # then a paste past the limit: nothing is cut
    assert page.locator("#prompt").input_value() == "a" * (limit - 100) + "b" * 10_000
    page.locator("#prompt").fill("a" * (limit - 100))  # back under the limit, near it
    counter = page.locator("#prompt-count")
    expect(counter).to_be_visible()  # near the limit, the count shows
    assert NBSP.sub(" ", counter.inner_text()) == f"{fr(limit - 100)} / {fr(limit)} caractères"
    assert counter.get_attribute("data-over") is None

    page.locator("#prompt").press("End")
    page.keyboard.insert_text("b" * 10_000)
    expect(counter).to_have_attribute("data-over", "")
    page.locator("#prompt").press("Enter")
    error = page.locator("#composer-error")
    expect(error).to_be_visible()
    total = limit - 100 + 10_000
    assert NBSP.sub(" ", error.inner_text()) == (
        f"Ce message fait {fr(total)} caractères, {fr(limit)} au plus : raccourcissez-le, "
        "ou envoyez-le en plusieurs fois."
    )
    assert page.locator("#prompt").input_value().endswith("b" * 10_000), "the message stays in the box, whole"
    assert posts == [], "nothing is sent, and no conversation is made"
    assert page.locator("#messages article").count() == 0
    for theme in ("light", "dark"):
        page.emulate_media(color_scheme=theme)
        page.screenshot(path=str(artifacts_dir / f"composer-too-long-{viewport['width']}-{theme}.png"))

    # Cut back under the limit: the error goes, and the message can be sent.
    page.locator("#prompt").fill("a" * (limit - 1))
    expect(error).to_be_hidden()
    assert page.locator("#prompt").get_attribute("aria-invalid") is None


# -- 2. a refused first message leaves no conversation behind -------------------------------------
def test_a_new_chats_first_message_refused_by_the_server_leaves_no_conversation(open_page, scripted_model):
    scripted_model.stall_after = 0  # every answer waits, silent: they pile up
    busy = []
    for number in range(3):  # MAX_ANSWERS_PER_USER answers under way already
        other = open_page()
        start_chat(other)
        send(other, f"Question {number}")
        expect(other.locator(f"{LAST_ANSWER} >> [data-status]")).to_be_visible()
        busy.append(other)
    page = open_page()
    start_chat(page)
    before = [c["id"] for c in page.request.get("/conversations").json()["conversations"]]
    send(page, "Une de trop")
    error = page.locator("#composer-error")
    expect(error).to_be_visible()
    assert page.locator("#prompt").input_value() == "Une de trop", "the refused message stays in the box"
    after = [c["id"] for c in page.request.get("/conversations").json()["conversations"]]
    assert after == before, "no empty conversation was left behind"
    assert page.locator("#conversation-list [data-conversation-id]").count() == len(before)
    assert page.evaluate("location.pathname") == "/"
    assert page.locator("#chat").get_attribute("data-conversation-id") == ""
    for other in busy:
        other.locator("#stop").click()
        wait_for_answer_end(other)
    # The same message, sent again once there is room, starts its conversation.
    scripted_model.stall_after = None
    scripted_model.script = ["Cette", " fois", "."]
    page.locator("#prompt").press("Enter")
    ended(page)
    assert re.fullmatch(r"/c/\d+", page.evaluate("location.pathname"))
    assert len(page.request.get("/conversations").json()["conversations"]) == len(before) + 1


# -- 3. a new chat with presets: settings closed, a small preset picker ---------------------------
@pytest.fixture
def preset(open_page, live_server):
    """A preset of the admin's, deleted after the test (every other test's new chat stays bare)."""
    page = open_page()
    page.goto("/settings")
    name = f"Traducteur {uuid.uuid4().hex[:6]}"
    system_prompt = "Tu traduis chaque message en anglais."
    page.locator("form[data-new-preset] input[name=name]").fill(name)
    page.locator("form[data-new-preset] textarea[name=system_prompt]").fill(system_prompt)
    with page.expect_navigation():
        page.locator("form[data-new-preset] button[type=submit]").click()
    yield name, system_prompt
    page.goto("/settings")
    item = page.locator(f"[data-presets] li:has-text('{name}')")
    page.on("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        item.locator("form[action$='/delete'] button").click()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_new_chat_with_presets_opens_with_its_settings_closed_and_a_small_preset_picker(
    open_page, scripted_model, preset, viewport, artifacts_dir
):
    name, system_prompt = preset
    page = open_page(viewport=viewport)
    start_chat(page)
    expect(page.locator("#settings-panel")).to_be_hidden()
    expect(page.locator("[data-settings-toggle]")).to_have_attribute("aria-expanded", "false")
    picker = page.locator("[data-preset-row]")
    expect(picker).to_be_visible()
    assert picker.bounding_box()["height"] <= 40, "one short row, not a panel"
    page.locator("#preset").select_option(label=name)
    page.locator("#model").select_option(SCRIPTED_MODEL)
    for theme in ("light", "dark"):
        page.emulate_media(color_scheme=theme)
        page.screenshot(path=str(artifacts_dir / f"new-chat-preset-{viewport['width']}-{theme}.png"))
    page.emulate_media(color_scheme="light")

    scripted_model.script = ["It", " is", " done", "."]
    send(page, "Bonjour à tous")
    ended(page)
    expect(page.locator("#settings-panel")).to_be_hidden()
    expect(page.locator("[data-preset-row]")).to_have_count(0)
    conversation_id = page.locator("#chat").get_attribute("data-conversation-id")
    stored = page.request.get(f"/conversations/{conversation_id}/messages").json()
    assert stored["conversation"]["system_prompt"] == system_prompt, "the preset was applied"


# -- 4. an answer that ends inside its thinking -------------------------------------------------
def unfinished_thinking_shown(page) -> dict:
    answer = page.locator(LAST_ANSWER)
    return {
        "summary": answer.locator("[data-thinking-summary]").inner_text().strip(),
        "open": answer.locator("[data-thinking-block]").evaluate("d => d.open"),
        "thinking": " ".join(answer.locator("[data-thinking]").inner_text().split()),
        "note": answer.locator("[data-unfinished]").is_visible(),
    }


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_an_answer_that_ends_inside_its_thinking_says_so_with_its_thinking_open(
    viewport, open_page, scripted_model, artifacts_dir
):
    page = open_page(viewport=viewport)
    start_chat(page)
    # The model ignored think:false and never closed its <think>: everything is thinking.
    scripted_model.script = ["<think>", "\n", "Je", " réfléchis", " encore", " à", " la", " question"]
    send(page)
    ended(page)
    live = unfinished_thinking_shown(page)
    assert live == {
        "summary": i18n(page, "unfinished_thinking"),
        "open": True,
        "thinking": "Je réfléchis encore à la question",
        "note": True,
    }, live
    assert live["summary"] == "Réflexion inachevée" != i18n(page, "thinking_now")
    for theme in ("light", "dark"):
        page.emulate_media(color_scheme=theme)
        page.screenshot(
            path=str(artifacts_dir / f"answer-unfinished-thinking-{viewport['width']}-{theme}.png")
        )

    page.reload()
    page.wait_for_selector(f"{LAST_ANSWER} >> [data-markdown][data-rendered]", state="attached")
    assert unfinished_thinking_shown(page) == live


# -- 5. waiting: seconds in every waiting phase, and a silence said long before the stall limit --
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_wait_before_the_first_word_shows_the_seconds_passing(
    viewport, open_page, scripted_model, artifacts_dir
):
    page = open_page(viewport=viewport)
    page.clock.install()
    start_chat(page)
    scripted_model.stall_after = 0  # the model reads the prompt and says nothing
    send(page)
    status = page.locator(f"{LAST_ANSWER} >> [data-status]")
    expect(status).to_be_visible()
    waiting = {i18n(page, "loading"), i18n(page, "prompt")}
    assert status_text(page) in waiting, status_text(page)
    page.clock.fast_forward(7_000)
    expect(status).to_have_text(re.compile(r" · \d+ s$"))
    label, seconds = re.fullmatch(r"(.*) · (\d+) s", status_text(page)).groups()
    assert label in waiting and int(seconds) >= 7, status_text(page)
    page.clock.fast_forward(5_000)
    expect(status).not_to_have_text(f"{label} · {seconds} s")  # it keeps counting
    assert int(re.search(r"(\d+) s$", status_text(page)).group(1)) >= 12
    for theme in ("light", "dark"):
        page.emulate_media(color_scheme=theme)
        page.screenshot(path=str(artifacts_dir / f"answer-waiting-{viewport['width']}-{theme}.png"))
    page.locator("#stop").click()
    wait_for_answer_end(page)


def test_a_wait_in_the_queue_shows_its_position_and_the_seconds_passing(
    open_page, scripted_model, artifacts_dir
):
    first = open_page()
    start_chat(first)
    scripted_model.stall_after = 0  # the first answer holds the model's only seat, silent
    send(first, "La première question.")
    expect(first.locator(f"{LAST_ANSWER} >> [data-status]")).to_be_visible()

    page = open_page()
    page.clock.install()
    start_chat(page)
    send(page, "La seconde question.")
    status = page.locator(f"{LAST_ANSWER} >> [data-status]")
    queued = i18n(page, "queued").replace("{position}", "1")
    expect(status).to_have_text(queued)
    page.clock.fast_forward(9_000)
    expect(status).to_have_text(re.compile("^" + re.escape(queued) + r" · \d+ s$"))
    assert int(re.search(r"(\d+) s$", status_text(page)).group(1)) >= 9
    for theme in ("light", "dark"):
        page.emulate_media(color_scheme=theme)
        page.screenshot(path=str(artifacts_dir / f"answer-queued-1280-{theme}.png"))
    page.locator("#stop").click()
    wait_for_answer_end(page)
    first.locator("#stop").click()
    wait_for_answer_end(first)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_model_that_goes_silent_is_said_so_after_15_seconds(
    viewport, open_page, scripted_model, artifacts_dir
):
    page = open_page(viewport=viewport)
    page.clock.install()
    start_chat(page)
    scripted_model.script = ["Voici", " le", " début", " puis", " plus", " rien"]
    scripted_model.stall_after = 3
    send(page)
    page.wait_for_function(
        "() => (document.querySelector('#messages article[data-role=assistant] [data-markdown]') || {})"
        ".textContent?.includes('début')"
    )
    status = page.locator(f"{LAST_ANSWER} >> [data-status]")
    page.clock.fast_forward(10_000)
    page.clock.run_for(1_000)
    assert not status.is_visible() or "texte" not in status_text(page), "not before 15 s"
    page.clock.fast_forward(6_000)
    expect(status).to_have_text(re.compile(r"^Toujours pas de nouveau texte depuis 1[6-9] s…$"))
    for theme in ("light", "dark"):
        page.emulate_media(color_scheme=theme)
        page.screenshot(path=str(artifacts_dir / f"answer-silent-{viewport['width']}-{theme}.png"))
    page.locator("#stop").click()
    wait_for_answer_end(page)


# -- 8. copying, failing, stopping before the first word, the welcome notice ---------------------
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_copying_an_answer_shows_copied_next_to_its_button(
    viewport, open_page, scripted_model, artifacts_dir
):
    page = open_page(viewport=viewport, permissions=["clipboard-read", "clipboard-write"])
    start_chat(page)
    scripted_model.script = ["Une", " réponse", " à", " copier", "."]
    send(page)
    ended(page)
    answer = page.locator(LAST_ANSWER)
    answer.locator('[data-action="copy"]').click()
    shown = answer.locator("[data-copied-label]")
    expect(shown).to_be_visible()
    expect(shown).to_have_text("Copié")
    page.screenshot(path=str(artifacts_dir / f"answer-copied-{viewport['width']}-light.png"))
    assert page.evaluate("navigator.clipboard.readText()") == "Une réponse à copier."
    expect(shown).to_be_hidden(timeout=5_000)  # it goes after a moment


def test_a_failed_answer_offers_to_write_it_again_but_no_thumbs(open_page, scripted_model):
    page = open_page()
    start_chat(page)
    scripted_model.fail_with = (500, "the scripted model failed")
    send(page)
    ended(page)
    answer = page.locator(LAST_ANSWER)
    assert answer.get_attribute("data-state") == "error"
    for _ in ("live", "reloaded"):
        expect(answer.locator("[data-error]")).to_be_visible()
        expect(answer.locator('[data-actions] [data-action="regenerate"]')).to_be_visible()
        expect(answer.locator('[data-action="up"]')).to_be_hidden()
        expect(answer.locator('[data-action="down"]')).to_be_hidden()
        page.reload()
        page.wait_for_selector(f"{LAST_ANSWER} >> [data-markdown][data-rendered]", state="attached")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_stop_before_the_first_word_says_so_and_offers_to_write_it_again(
    viewport, open_page, scripted_model, artifacts_dir
):
    page = open_page(viewport=viewport)
    start_chat(page)
    scripted_model.stall_after = 0
    send(page)
    expect(page.locator(f"{LAST_ANSWER} >> [data-status]")).to_be_visible()
    page.locator("#stop").click()
    wait_for_answer_end(page)
    answer = page.locator(LAST_ANSWER)
    assert answer.get_attribute("data-state") == "stopped"
    for when in ("live", "reloaded"):
        note = answer.locator("[data-stopped-empty]")
        expect(note).to_be_visible()
        expect(note).to_contain_text("Arrêtée avant d'avoir écrit le moindre texte.")
        expect(answer.locator('[data-action="up"]')).to_be_hidden()
        if when == "live":
            for theme in ("light", "dark"):
                page.emulate_media(color_scheme=theme)
                page.screenshot(
                    path=str(artifacts_dir / f"answer-stopped-empty-{viewport['width']}-{theme}.png")
                )
            page.reload()
            page.wait_for_selector(f"{LAST_ANSWER} >> [data-markdown][data-rendered]", state="attached")

    scripted_model.stall_after = None
    scripted_model.script = ["Cette", " fois", " oui", "."]
    note.get_by_role("button", name="Relancer").click()
    ended(page)
    assert (
        " ".join(page.locator(f"{LAST_ANSWER} >> [data-markdown]").inner_text().split()) == "Cette fois oui."
    )
    expect(page.locator(f"{LAST_ANSWER} >> [data-stopped-empty]")).to_be_hidden()


def test_the_welcome_notice_leaves_the_thread_once_the_first_message_is_sent(open_page, scripted_model):
    page = open_page(storage_state=None)
    register_through_form(page, f"bienvenue-{uuid.uuid4().hex[:8]}", "un mot de passe assez long")
    welcome = page.locator("#messages > p[role=status]", has_text="Bienvenue")
    expect(welcome).to_have_count(1)
    page.locator("#model").select_option(SCRIPTED_MODEL)
    scripted_model.script = ["Bonjour", "."]
    send(page, "Bonjour")
    ended(page)
    expect(welcome).to_have_count(0)
