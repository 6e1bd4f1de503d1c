"""The main user journeys, walked in headless Chromium on a desktop and on a phone screen.

Each journey is one test with a browser profile (and mostly an account) of its own, in French,
against the real server and its embedded model (SmolLM2). Every page it passes through is
saved as a full-page screenshot in test-artifacts/browser/journeys/<viewport>/, named
<NN-journey>-<step>.png, for a human to look over. Any JavaScript error on a page fails the
journey. Answers are kept short (the conversation's "longest answer" setting) except where a
long one is the point (Stop): the suite then stays within a few minutes on a 2-core machine.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import ARTIFACTS, log_in_through_form
from tests.browser.pages import (
    LAST_ANSWER,
    LAST_QUESTION,
    VIEWPORTS,
    new_chat,
    normalized,
    open_sidebar,
    register_through_form,
    wait_for_answer_end,
    wait_for_streaming,
)
from tests.patience import patience_ms

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
expect = sync_api.expect

JOURNEYS = ARTIFACTS / "journeys"
PASSWORD = "une phrase de passe assez longue"
SHORT_ANSWER_TOKENS = "40"  # enough for a sentence or two; the model is not what is tested here
STOP_TIMEOUT_MS = patience_ms(10_000)  # Stop ends an answer within seconds: part of the behaviour
REASONING_MODEL = "deepseek-r1:1.5b"  # from the Ollama stand-in
SMALL_MODEL = "smollm2:135m"  # from the Ollama stand-in

# Installed before a message is sent: what the newest answer's status line said, and whether
# it said it before the first word of the answer came.
RECORD_STATUS = """() => {
  window.__statuses = [];
  const messages = document.getElementById("messages");
  new MutationObserver(() => {
    const answers = messages.querySelectorAll("article[data-role=assistant]");
    const answer = answers[answers.length - 1];
    if (!answer) return;
    const status = answer.querySelector("[data-status]");
    const text = status.classList.contains("hidden") ? "" : status.textContent.trim();
    const written = answer.querySelector("[data-markdown]").textContent.trim().length;
    const last = window.__statuses[window.__statuses.length - 1];
    if (text && (!last || last.text !== text)) window.__statuses.push({ text, written });
  }).observe(messages, { subtree: true, childList: true, characterData: true, attributes: true });
}"""

# The colour the page's background is painted with, as [r, g, b] whatever CSS colour syntax
# the stylesheet uses (rgb(), oklch()…): a 1×1 canvas converts it.
BACKGROUND_RGB = """() => {
  const colour = getComputedStyle(document.body).backgroundColor;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 1;
  const context = canvas.getContext("2d");
  context.fillStyle = colour;
  context.fillRect(0, 0, 1, 1);
  return Array.from(context.getImageData(0, 0, 1, 1).data.slice(0, 3));
}"""


def luminance(rgb: list[int]) -> float:
    r, g, b = (c / 255 for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


class Journey:
    """One journey's browser profiles, screenshots and JavaScript errors."""

    def __init__(self, browser, base_url: str, viewport: str, number: int, name: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.viewport = viewport
        self.prefix = f"{number:02d}-{name}"
        self.folder = JOURNEYS / viewport
        self.folder.mkdir(parents=True, exist_ok=True)
        self.contexts: list = []
        self.errors: list[str] = []
        # HTTP errors a journey provokes on purpose (a wrong password, an unknown page): the
        # browser logs them as console errors, which they are not here.
        self.expected_statuses: set[int] = set()
        # What goes wrong for the user without stopping the journey (a button out of reach):
        # reported, and failing the journey, once it has been walked to its end.
        self.problems: list[str] = []
        self.shots = 0

    def new_page(self, **options):
        context = self.browser.new_context(
            locale="fr-FR", base_url=self.base_url, **VIEWPORTS[self.viewport], **options
        )
        context.set_default_timeout(20_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", lambda message: self._console(page, message))
        page.on("pageerror", lambda error: self.errors.append(f"pageerror on {page.url}: {error}"))
        return page

    def _console(self, page, message) -> None:
        if message.type != "error":
            return
        status = re.search(r"status of (\d{3})", message.text)
        if status and int(status.group(1)) in self.expected_statuses:
            return
        self.errors.append(f"console error on {page.url}: {message.text}")

    def user(self, tag: str = "") -> tuple:
        """A page signed in as a new account created through the register form."""
        page = self.new_page()
        username = f"{self.prefix[:2]}{tag}-{self.viewport}-{uuid.uuid4().hex[:8]}"
        register_through_form(page, username, PASSWORD)
        return page, username

    def shot(self, page, step: str) -> None:
        page.screenshot(path=str(self.folder / f"{self.prefix}-{step}.png"), full_page=True)
        self.shots += 1
        if not page.locator("#chat").count():  # the chat page's own width: journey 2 checks it
            self.check_fits_width(page, f"step {step}")

    def tap(self, locator, what: str) -> None:
        """Click (tap) like the user; if the element cannot be reached, note it and go on with the
        keyboard (focus, Enter) so that the rest of the journey is still walked."""
        try:
            locator.wait_for(state="visible")  # a busy machine's page may take a while to show it
            locator.click(timeout=patience_ms(3_000))  # shown, yet not clickable: covered, or out of reach
        except sync_api.TimeoutError as error:
            reason = next((line.strip(" -") for line in str(error).splitlines() if "intercepts" in line), "")
            box = locator.bounding_box() or {"x": 0, "y": 0, "width": 0, "height": 0}
            screen = locator.page.evaluate(
                "() => [innerWidth, innerHeight, visualViewport.width, visualViewport.height].map(Math.round)"
            )
            self.problems.append(
                f"{what} cannot be clicked on the {self.viewport} at {locator.page.url}: {reason}; it spans"
                f" x {box['x']:.0f}–{box['x'] + box['width']:.0f},"
                f" y {box['y']:.0f}–{box['y'] + box['height']:.0f}"
                f" of a {screen[0]}×{screen[1]} px layout viewport; the screen shows {screen[2]}×{screen[3]}"
            )
            locator.focus()
            locator.page.keyboard.press("Enter")

    def check_fits_width(self, page, where: str) -> None:
        """The page is no wider than the screen: nothing to pan sideways to, no button out of sight."""
        sizes = page.evaluate(
            "() => ({ page: document.documentElement.scrollWidth, screen: window.visualViewport.width })"
        )
        if sizes["page"] > sizes["screen"] + 1:
            wide = page.evaluate(
                """(limit) => [...document.querySelectorAll("body *")]
                  .filter((e) => e.getBoundingClientRect().right > limit + 1 && e.getClientRects().length)
                  .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}`
                    + `${e.dataset.settingsToggle !== undefined ? "[data-settings-toggle]" : ""}`
                    + ` (right edge at ${Math.round(e.getBoundingClientRect().right)} px)`)""",
                sizes["screen"],
            )
            self.problems.append(
                f"{where} ({page.url}) is {sizes['page']} px wide on a {sizes['screen']:.0f} px"
                f" {self.viewport} screen; past the edge: {', '.join(wide)}"
            )

    def check_no_js_errors(self) -> None:
        """The journey's end: no JavaScript error on any page, nothing out of the user's reach."""
        assert self.errors == [], "JavaScript errors during the journey:\n" + "\n".join(self.errors)
        assert self.problems == [], "Problems met on the way:\n" + "\n".join(self.problems)

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture(params=list(VIEWPORTS), scope="module")
def viewport(request) -> str:
    return request.param


_shots: list[int] = []


@pytest.fixture
def journey(browser, live_server, admin, viewport, request):
    """Open a journey named after the test: `journey(number, name)`."""
    opened: list[Journey] = []

    def start(number: int, name: str) -> Journey:
        walk = Journey(browser, live_server.base_url, viewport, number, name)
        opened.append(walk)
        return walk

    yield start
    for walk in opened:
        walk.close()
        _shots.append(walk.shots)
        if walk.errors:
            print(f"\n{request.node.name}: JavaScript errors:\n" + "\n".join(walk.errors))


@pytest.fixture(scope="module", autouse=True)
def _report_screenshots():
    yield
    print(f"\nJourney screenshots ({sum(_shots)} saved this run): {JOURNEYS}")


# --- Helpers ------------------------------------------------------------------------------------


def start_short_chat(page) -> None:
    """A new chat whose answers stay short: set in the conversation settings before it starts."""
    new_chat(page)
    panel, toggle = page.locator("#settings-panel"), page.locator("[data-settings-toggle]")
    # With the keyboard: the journeys are not about this setting, and on a phone the ⚙ button
    # may be out of reach (journey 2 checks the page fits the screen).
    if panel.is_hidden():
        toggle.focus()
        page.keyboard.press("Enter")
    page.fill("#opt-max_tokens", SHORT_ANSWER_TOKENS)
    toggle.focus()
    page.keyboard.press("Enter")
    expect(panel).to_be_hidden()


def send(page, text: str) -> dict:
    """Type a message, send it with Enter; wait for the whole answer."""
    page.locator("#prompt").fill(text)
    page.locator("#prompt").press("Enter")
    page.locator(LAST_QUESTION).wait_for()
    return wait_for_answer_end(page)


def answer_with_id(page, message_id: str):
    return page.locator(f'#messages article[data-role=assistant][data-message-id="{message_id}"]')


def stored_messages(page) -> dict:
    """The conversation of the page as the server stores it (GET /conversations/<id>/messages)."""
    conversation_id = page.locator("#chat").get_attribute("data-conversation-id")
    response = page.request.get(f"/conversations/{conversation_id}/messages")
    assert response.ok, response.status
    return response.json()


def i18n(page, key: str) -> str:
    """A text the chat page's script shows, in the page's language."""
    return page.evaluate("k => JSON.parse(document.getElementById('chat').dataset.i18n)[k]", key)


def version_label(article) -> str:
    return article.locator("[data-version-label]").inner_text().strip()


def go_to_previous_version(page, article) -> None:
    with page.expect_navigation():
        article.locator('[data-version-step="-1"] button').click()
    page.wait_for_selector("#messages [data-markdown][data-rendered]")


# --- The journeys -------------------------------------------------------------------------------


def test_01_a_new_user_registers_signs_out_and_back_in_and_a_wrong_password_is_refused_in_french(
    journey,
):
    walk = journey(1, "register")
    walk.expected_statuses = {400, 401, 403}  # the refused sign-in
    page = walk.new_page()
    username = f"nouveau-{walk.viewport}-{uuid.uuid4().hex[:8]}"

    page.goto("/login")
    walk.shot(page, "1-login-page")
    with page.expect_navigation():
        page.locator('main a[href$="/register"]').click()
    expect(page.locator("h1")).to_have_text("Créer un compte")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=confirm]", PASSWORD)
    walk.shot(page, "2-register-filled")
    with page.expect_navigation():
        page.click("form button[type=submit]")
    page.wait_for_selector("#prompt:not([disabled])")
    assert urlsplit(page.url).path == "/"
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("[data-empty]")).to_be_visible()
    walk.shot(page, "3-chat-after-registering")

    open_sidebar(page)
    expect(page.locator("#sidebar")).to_contain_text(username)
    walk.shot(page, "4-sidebar-with-sign-out")
    with page.expect_navigation():
        walk.tap(page.locator("#sidebar form[action$='/logout'] button"), "Se déconnecter in the sidebar")
    page.wait_for_selector("input[name=password]")
    assert urlsplit(page.url).path == "/login"
    page.goto("/")
    assert urlsplit(page.url).path == "/login", "signed out for real: the chat leads to the sign-in page"

    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pas le bon mot de passe du tout")
    with page.expect_navigation():
        page.click("form button[type=submit]")
    expect(page.locator("main")).to_contain_text("Nom d'utilisateur ou mot de passe incorrect.")
    expect(page.locator("input[name=password]")).to_have_attribute("aria-invalid", "true")
    assert page.locator("#prompt").count() == 0
    walk.shot(page, "5-wrong-password")

    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    page.wait_for_selector("#prompt:not([disabled])")
    assert urlsplit(page.url).path == "/"
    walk.shot(page, "6-signed-in-again")
    walk.check_no_js_errors()


def test_02_a_user_sends_two_lines_with_enter_sees_the_wait_the_streamed_answer_and_the_new_conversation(
    journey,
):
    walk = journey(2, "chat")
    page, _ = walk.user()
    start_short_chat(page)
    walk.shot(page, "1-new-chat")
    walk.check_fits_width(page, "the new chat page")

    prompt = page.locator("#prompt")
    prompt.click()
    prompt.press_sequentially("Géographie :")
    prompt.press("Shift+Enter")
    prompt.press_sequentially("quelle est la capitale de l'Italie ?")
    assert prompt.input_value() == "Géographie :\nquelle est la capitale de l'Italie ?"
    assert prompt.input_value().count("\n") == 1, "Shift+Enter adds a line and sends nothing"
    assert page.locator("#messages article").count() == 0
    walk.shot(page, "2-two-lines-typed")

    page.evaluate(RECORD_STATUS)
    prompt.press("Enter")
    question = page.locator(LAST_QUESTION)
    question.wait_for()
    expect(question.locator("[data-content]")).to_have_text(
        "Géographie :\nquelle est la capitale de l'Italie ?"
    )
    expect(prompt).to_have_value("")
    walk.shot(page, "3-waiting-or-streaming")
    ended = wait_for_answer_end(page)
    walk.shot(page, "4-answer-complete")

    statuses = page.evaluate("() => window.__statuses")
    waiting_words = {i18n(page, "prompt"), i18n(page, "loading")}
    assert any(s["written"] == 0 and (s["text"] in waiting_words or "file" in s["text"]) for s in statuses), (
        f"a wait status shows before the answer's first words: {statuses}"
    )
    assert ended["state"] == "complete", ended
    assert ended["text"], ended
    assert re.fullmatch(r"\d[\d\u202f]*,\d jetons/s · premier jeton après \d+,\d\d s", ended["speed"]), ended
    assert page.locator(LAST_ANSWER).locator("[data-status]").is_hidden(), (
        "the wait status is gone at the end"
    )

    title = "Géographie : quelle est la capitale de l'Italie ?"
    assert re.fullmatch(r"/c/\d+", urlsplit(page.url).path), page.url
    expect(page.locator("[data-conversation-title]")).to_have_text(title)
    open_sidebar(page)
    item = page.locator("#conversation-list [data-title]").first
    expect(item).to_have_text(title)
    expect(page.locator("#conversation-list a:has([data-title])").first).to_have_attribute(
        "aria-current", "page"
    )
    walk.shot(page, "5-conversation-in-the-list")

    page.reload()  # the server's title is the one the page guessed
    page.wait_for_selector("#messages [data-markdown][data-rendered]")
    open_sidebar(page)
    expect(page.locator("#conversation-list [data-title]").first).to_have_text(title)
    expect(page.locator(LAST_ANSWER).locator("[data-speed]")).to_have_text(ended["speed"])
    walk.shot(page, "6-after-reload")
    walk.check_fits_width(page, "a conversation page")
    walk.check_no_js_errors()


def test_03_a_user_presses_escape_while_a_long_story_streams_and_the_answer_ends_stopped_at_once(journey):
    walk = journey(3, "stop")
    page, _ = walk.user()
    new_chat(page)
    page.locator("#prompt").fill("Écris une très longue histoire de 500 mots sur un dragon et une princesse.")
    page.locator("#prompt").press("Enter")
    wait_for_streaming(page, 20)
    assert page.locator(LAST_ANSWER).get_attribute("data-state") == "generating", "ended before Escape"
    expect(page.locator("#stop")).to_be_visible()
    walk.shot(page, "1-streaming")

    pressed = time.monotonic()
    page.keyboard.press("Escape")
    ended = wait_for_answer_end(page, timeout=STOP_TIMEOUT_MS)
    took = time.monotonic() - pressed
    print(f"\n[{walk.viewport}] Escape → answer stopped in {took:.2f} s")
    walk.shot(page, "2-stopped")

    assert ended["state"] == "stopped", ended
    assert ended["label"] == i18n(page, "stopped"), ended
    assert ended["label"].startswith("Arrêté"), ended
    assert ended["text"], "what was written before Escape stays"
    assert took < 5, f"stopping took {took:.1f} s"
    expect(page.locator("#stop")).to_be_hidden()
    expect(page.locator("#send")).to_be_visible()
    expect(page.locator("#send")).to_be_enabled()
    page.locator("#prompt").fill("Merci, c'est assez.")
    expect(page.locator("#prompt")).to_have_value("Merci, c'est assez.")
    expect(page.locator("#prompt")).to_be_editable()
    walk.shot(page, "3-composer-ready")
    page.locator("#prompt").fill("")
    walk.check_no_js_errors()


def test_04_a_user_regenerates_an_answer_and_returns_to_the_first_version_even_after_a_reload(journey):
    walk = journey(4, "regenerate")
    page, _ = walk.user()
    start_short_chat(page)
    first = send(page, "Dis bonjour en une phrase.")
    assert first["state"] == "complete", first
    walk.shot(page, "1-first-answer")

    # The toolbar's button: the note of an answer stopped before any text (hidden here) has one too.
    page.locator(LAST_ANSWER).locator("[data-action=regenerate]:visible").click()
    page.wait_for_function(
        """(old) => {
          const answers = document.querySelectorAll("#messages article[data-role=assistant]");
          return answers.length === 1 && answers[0].dataset.messageId !== old;
        }""",
        arg=first["id"],
    )
    walk.shot(page, "2-rewriting")
    second = wait_for_answer_end(page)
    assert second["state"] == "complete", second
    assert second["id"] != first["id"]
    assert page.locator("#messages article[data-role=assistant]").count() == 1, "the new version replaces it"
    answer = answer_with_id(page, second["id"])
    assert version_label(answer) == "2 / 2"
    expect(answer.locator('[data-version-step="-1"] button')).to_be_enabled()
    expect(answer.locator('[data-version-step="1"] button')).to_be_disabled()
    walk.shot(page, "3-second-version")

    go_to_previous_version(page, answer)
    answer = answer_with_id(page, first["id"])
    expect(answer).to_be_visible()
    assert version_label(answer) == "1 / 2"
    assert normalized(answer.locator("[data-markdown]").inner_text()) == first["text"]
    assert answer_with_id(page, second["id"]).count() == 0
    walk.shot(page, "4-back-to-first-version")

    page.reload()
    answer = answer_with_id(page, first["id"])
    answer.locator("[data-markdown][data-rendered]").wait_for()
    assert version_label(answer) == "1 / 2"
    assert normalized(answer.locator("[data-markdown]").inner_text()) == first["text"]
    walk.shot(page, "5-after-reload")
    walk.check_no_js_errors()


def test_05_a_user_edits_the_question_gets_a_new_answer_and_can_go_back_to_the_first_question(journey):
    walk = journey(5, "edit")
    page, _ = walk.user()
    start_short_chat(page)
    first = send(page, "Cite une couleur.")
    first_question = page.locator(LAST_QUESTION).get_attribute("data-message-id")
    walk.shot(page, "1-first-question")

    page.locator(LAST_QUESTION).locator("[data-action=edit]").click()
    box = page.locator(LAST_QUESTION).locator("[data-edit-form] textarea")
    expect(box).to_be_focused()
    expect(box).to_have_value("Cite une couleur.")
    box.fill("Cite un fruit.")
    walk.shot(page, "2-editing")
    box.press("Enter")
    page.wait_for_function(
        """(old) => {
          const questions = document.querySelectorAll("#messages article[data-role=user]");
          return questions.length === 1 && questions[0].dataset.messageId !== old;
        }""",
        arg=first_question,
    )
    second = wait_for_answer_end(page)
    assert second["state"] == "complete", second
    assert second["id"] != first["id"]
    question = page.locator(LAST_QUESTION)
    expect(question.locator("[data-content]")).to_have_text("Cite un fruit.")
    assert page.locator("#messages article").count() == 2, "the new question and its answer only"
    assert version_label(question) == "2 / 2"
    walk.shot(page, "3-new-question-and-answer")

    go_to_previous_version(page, question)
    question = page.locator(f'#messages article[data-message-id="{first_question}"]')
    expect(question.locator("[data-content]")).to_have_text("Cite une couleur.")
    assert version_label(question) == "1 / 2"
    expect(answer_with_id(page, first["id"])).to_be_visible()
    assert (
        normalized(answer_with_id(page, first["id"]).locator("[data-markdown]").inner_text()) == first["text"]
    )
    walk.shot(page, "4-first-question-again")
    walk.check_no_js_errors()


def test_06_a_user_copies_an_answer_and_gives_it_a_thumbs_up_that_stays_after_a_reload(journey):
    walk = journey(6, "copy-rate")
    page, _ = walk.user()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=walk.base_url)
    start_short_chat(page)
    ended = send(page, "Donne un conseil pour bien dormir.")
    walk.shot(page, "1-answer")

    answer = answer_with_id(page, ended["id"])
    copy = answer.locator("[data-action=copy]")
    copy.click()
    expect(copy).to_have_attribute("data-copied", "true")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    stored = next(m for m in stored_messages(page)["messages"] if str(m["id"]) == ended["id"])
    assert copied == stored["content"], "the answer as written (its Markdown source) is copied"
    assert normalized(copied) and ended["text"].split()[0] in copied
    walk.shot(page, "2-copied")

    up, down = answer.locator("[data-action=up]"), answer.locator("[data-action=down]")
    expect(up).to_have_attribute("aria-pressed", "false")
    up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    expect(down).to_have_attribute("aria-pressed", "false")
    walk.shot(page, "3-thumbs-up")

    page.reload()
    answer.locator("[data-markdown][data-rendered]").wait_for()
    expect(up).to_have_attribute("aria-pressed", "true")
    expect(down).to_have_attribute("aria-pressed", "false")
    assert (
        next(m for m in stored_messages(page)["messages"] if str(m["id"]) == ended["id"])["feedback"] == "up"
    )
    walk.shot(page, "4-after-reload")
    walk.check_no_js_errors()


def test_07_a_user_searches_a_word_sees_results_under_the_box_then_the_search_page_and_opens_the_conversation(
    journey,
):
    walk = journey(7, "search")
    page, _ = walk.user()
    word = f"zorglub{uuid.uuid4().hex[:4]}"
    start_short_chat(page)
    send(page, f"Invente une définition pour le mot {word}.")
    conversation_path = urlsplit(page.url).path
    start_short_chat(page)  # somewhere else: the search brings the user back
    send(page, "Dis au revoir.")
    new_chat(page)

    open_sidebar(page)
    box = page.locator("#conversation-search")
    box.click()
    box.press_sequentially(word[:-2].upper())  # case does not matter; part of the word is enough
    results = page.locator("#sidebar [data-search-results]")
    expect(results).to_be_visible()
    hit = results.locator("a")
    expect(hit).to_have_count(1)
    expect(hit).to_have_attribute("href", conversation_path)
    expect(hit.locator("mark")).to_have_text(word[:-2])
    walk.shot(page, "1-results-under-the-box")

    with page.expect_navigation():
        box.press("Enter")
    assert urlsplit(page.url).path == "/search"
    expect(page.locator("h1")).to_have_text("Rechercher dans les conversations")
    hits = page.locator("main ul[aria-label] > li")
    expect(hits).to_have_count(1)
    expect(hits.locator("[data-snippet] mark")).to_have_text(word[:-2])
    expect(hits.locator("[data-snippet]")).to_contain_text(word)
    walk.shot(page, "2-search-page")

    with page.expect_navigation():
        hits.locator(f'a[href="{conversation_path}"]').click()
    assert urlsplit(page.url).path == conversation_path
    expect(page.locator(LAST_QUESTION).locator("[data-content]")).to_contain_text(word)
    walk.shot(page, "3-conversation-opened")
    walk.check_no_js_errors()


def test_08_a_user_exports_a_conversation_as_markdown_and_json_from_its_menu(journey):
    walk = journey(8, "export")
    page, _ = walk.user()
    start_short_chat(page)
    question = "Donne le nom d'un oiseau."
    ended = send(page, question)
    page.reload()  # the menu belongs to a conversation page the server made
    page.wait_for_selector("#messages [data-markdown][data-rendered]")
    stored = stored_messages(page)
    answer = next(m for m in stored["messages"] if str(m["id"]) == ended["id"])
    # Named after the title; a name's trailing dot is left out (Windows would drop it anyway).
    name = stored["conversation"]["title"].rstrip(" .")
    assert name == "Donne le nom d'un oiseau", stored["conversation"]

    menu = page.locator("#chat header details[data-menu]")
    walk.tap(menu.locator("summary"), "the export menu's ⤓ button")
    expect(menu.locator("[data-export=md]")).to_be_visible()
    expect(menu.locator("[data-export=md]")).to_have_text("Exporter en Markdown")
    walk.shot(page, "1-export-menu")

    with page.expect_download() as download:
        menu.locator("[data-export=md]").click()
    assert download.value.suggested_filename == f"{name}.md", download.value.suggested_filename
    markdown = Path(download.value.path()).read_text(encoding="utf-8")
    assert question in markdown, markdown
    assert answer["content"].strip() in markdown, markdown

    if not menu.evaluate("(menu) => menu.open"):
        walk.tap(menu.locator("summary"), "the export menu's ⤓ button")
    with page.expect_download() as download:
        menu.locator("[data-export=json]").click()
    assert download.value.suggested_filename == f"{name}.json", download.value.suggested_filename
    document = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert [(m["role"], m["content"]) for m in document["messages"]] == [
        ("user", question),
        ("assistant", answer["content"]),
    ], document["messages"]
    page.keyboard.press("Escape")
    walk.shot(page, "2-after-downloads")
    walk.check_no_js_errors()


def test_09_a_user_switches_language_and_theme_and_starts_a_chat_from_a_preset(journey):
    walk = journey(9, "settings")
    page, _ = walk.user()
    new_chat(page)
    open_sidebar(page)
    with page.expect_navigation():
        walk.tap(page.locator("#sidebar button[name=lang][value=en]"), "the sidebar's EN button")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    open_sidebar(page)
    expect(page.locator("#sidebar [data-new-chat]")).to_have_text("+ New chat")
    expect(page.locator("#prompt")).to_have_attribute("placeholder", re.compile("^Write a message"))
    walk.shot(page, "1-english")
    with page.expect_navigation():
        walk.tap(page.locator("#sidebar button[name=lang][value=fr]"), "the sidebar's FR button")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    open_sidebar(page)
    expect(page.locator("#sidebar [data-new-chat]")).to_have_text("+ Nouvelle discussion")
    walk.shot(page, "2-french-again")

    def choose_theme(theme: str) -> None:
        page.goto("/settings")
        page.locator(f"input[name=theme][value={theme}]").check()
        with page.expect_navigation():
            page.locator("form[data-appearance] button[type=submit]").click()
        expect(page.locator("main")).to_contain_text("Réglages enregistrés.")
        expect(page.locator(f"input[name=theme][value={theme}]")).to_be_checked()

    page.goto("/settings")
    expect(page.locator("h1")).to_have_text("Réglages")
    themes = page.locator("form[data-appearance] fieldset").nth(1)
    expect(themes.locator("label")).to_have_text(["Comme l'appareil", "Clair", "Sombre"])
    choose_theme("dark")
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
    assert luminance(page.evaluate(BACKGROUND_RGB)) < 0.2, page.evaluate(BACKGROUND_RGB)
    walk.shot(page, "3-dark-theme")
    new_chat(page)
    assert luminance(page.evaluate(BACKGROUND_RGB)) < 0.2, "every page is dark"
    walk.shot(page, "4-chat-in-dark")

    choose_theme("light")
    expect(page.locator("html")).not_to_have_class(re.compile(r"\bdark\b"))
    assert luminance(page.evaluate(BACKGROUND_RGB)) > 0.8, page.evaluate(BACKGROUND_RGB)
    walk.shot(page, "5-light-theme")

    page.emulate_media(color_scheme="dark")
    choose_theme("system")
    expect(page.locator("html")).not_to_have_class(re.compile(r"\b(dark|light)\b"))
    assert luminance(page.evaluate(BACKGROUND_RGB)) < 0.2, "the device is dark, so is the page"
    walk.shot(page, "6-system-theme-device-dark")
    page.emulate_media(color_scheme="light")
    page.wait_for_function("() => !matchMedia('(prefers-color-scheme: dark)').matches")
    assert luminance(page.evaluate(BACKGROUND_RGB)) > 0.8, "the device turned light, so did the page"
    page.emulate_media(color_scheme="dark")

    name, system_prompt = "Traducteur", "Tu traduis chaque message en anglais, sans commentaire."
    page.locator("form[data-new-preset] input[name=name]").fill(name)
    page.locator("form[data-new-preset] textarea[name=system_prompt]").fill(system_prompt)
    with page.expect_navigation():
        page.locator("form[data-new-preset] button[type=submit]").click()
    expect(page.locator(f"[data-presets] li:has-text('{name}')")).to_be_visible()
    walk.shot(page, "7-preset-created")

    new_chat(page)
    panel = page.locator("#settings-panel")
    if panel.is_hidden():
        walk.tap(page.locator("[data-settings-toggle]"), "the ⚙ conversation settings button")
    expect(panel).to_be_visible()
    expect(page.locator("[data-settings-toggle]")).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#system-prompt")).to_have_value("")
    page.locator("#preset").select_option(label=name)
    expect(page.locator("#system-prompt")).to_have_value(system_prompt)
    walk.shot(page, "8-preset-picked")
    walk.check_no_js_errors()


def test_10_an_unknown_address_shows_the_french_404_page_with_a_way_back(journey):
    walk = journey(10, "not-found")
    walk.expected_statuses = {404}
    page, _ = walk.user()
    response = page.goto("/cette-page-n-existe-pas")
    assert response is not None and response.status == 404
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("main")).to_contain_text("404")
    expect(page.locator("main h1")).to_have_text("Cette page n'existe pas.")
    expect(page.locator("main")).to_contain_text("L'adresse est peut-être mal saisie")
    assert page.locator("#prompt").count() == 0, "the error page is not the chat page"
    back = page.locator('main a[href="/"]')
    expect(back).to_be_visible()
    expect(back).to_have_text("Retour aux conversations")
    walk.shot(page, "1-not-found")
    with page.expect_navigation():
        back.click()
    page.wait_for_selector("#prompt")
    walk.shot(page, "2-back-to-the-chat")
    walk.check_no_js_errors()


def model_row(page, model_id: str):
    return page.locator(f'tr[data-model-id="{model_id}"]')


def press_model_button(page, model_id: str, action: str) -> None:
    """Press one of a model's buttons on /admin/models: "enabled" (Disable/Enable) or "default"."""
    with page.expect_navigation():
        model_row(page, model_id).locator(f'form[action$="/models/{action}"] button').click()
    page.wait_for_selector("tr[data-model-id]")


def test_11_the_admin_disables_a_model_and_changes_the_default_and_a_users_new_chat_follows(journey, admin):
    walk = journey(11, "admin-models")
    user, _ = walk.user()
    new_chat(user)
    offered = user.locator("#model option")
    assert user.locator(f'#model option[value="{REASONING_MODEL}"]').count() == 1
    default_before = user.locator("#model").input_value()
    assert default_before not in (SMALL_MODEL, ""), f"the journey needs another default: {default_before}"
    walk.shot(user, "1-user-models-before")

    admin_page = walk.new_page()
    log_in_through_form(admin_page, walk.base_url, *admin)
    open_sidebar(admin_page)
    with admin_page.expect_navigation():
        walk.tap(admin_page.locator('#sidebar a[href$="/admin/models"]'), "the sidebar's Modèles link")
    expect(model_row(admin_page, default_before).locator("[data-default]")).to_be_visible()
    walk.shot(admin_page, "2-admin-models-page")
    try:
        press_model_button(admin_page, REASONING_MODEL, "enabled")  # Disable
        expect(model_row(admin_page, REASONING_MODEL).locator("[data-state]")).to_contain_text("Désactivé")
        press_model_button(admin_page, SMALL_MODEL, "default")
        expect(model_row(admin_page, SMALL_MODEL).locator("[data-default]")).to_be_visible()
        walk.shot(admin_page, "3-admin-after-changes")

        new_chat(user)
        expect(user.locator("#model")).to_have_value(SMALL_MODEL)
        expect(user.locator(f'#model option[value="{REASONING_MODEL}"]')).to_have_count(0)
        assert offered.count() >= 2, "the other models are still offered"
        walk.shot(user, "4-user-models-after")
    finally:
        admin_page.goto("/admin/models")
        admin_page.wait_for_selector("tr[data-model-id]")
        enable = model_row(admin_page, REASONING_MODEL).locator(
            'form:has(input[name=enabled][value="1"]) button'
        )
        if enable.count():
            press_model_button(admin_page, REASONING_MODEL, "enabled")
        if not model_row(admin_page, default_before).locator("[data-default]").count():
            press_model_button(admin_page, default_before, "default")
    walk.shot(admin_page, "5-admin-restored")
    new_chat(user)
    expect(user.locator("#model")).to_have_value(default_before)
    expect(user.locator(f'#model option[value="{REASONING_MODEL}"]')).to_have_count(1)
    walk.shot(user, "6-user-models-restored")
    walk.check_no_js_errors()


def test_12_a_user_renames_a_conversation_then_deletes_it_from_the_list(journey):
    walk = journey(12, "rename-delete")
    page, _ = walk.user()
    start_short_chat(page)
    send(page, "Dis bonjour en une phrase.")
    conversation_id = page.locator("#chat").get_attribute("data-conversation-id")
    item = page.locator(f'#conversation-list li[data-conversation-id="{conversation_id}"]')

    open_sidebar(page)
    walk.tap(item.locator("[data-menu] summary"), "the conversation's ⋯ menu")
    item.locator("input[name=title]").fill("Salutations du matin")
    walk.shot(page, "1-renaming")
    with page.expect_navigation():
        item.locator("input[name=title]").press("Enter")
    expect(page.locator("[data-conversation-title]")).to_have_text("Salutations du matin")
    expect(item.locator("[data-title]")).to_have_text("Salutations du matin")
    assert stored_messages(page)["conversation"]["title"] == "Salutations du matin"
    walk.shot(page, "2-renamed")

    # Deleting asks first; saying no keeps everything.
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    open_sidebar(page)
    walk.tap(item.locator("[data-menu] summary"), "the conversation's ⋯ menu")
    walk.tap(item.locator("[data-delete] button"), "the menu's Supprimer button")
    expect(item).to_have_count(1)
    assert questions == ["Supprimer cette conversation et tous ses messages ?"], questions
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        walk.tap(item.locator("[data-delete] button"), "the menu's Supprimer button")
    page.wait_for_selector("#prompt")
    expect(page.locator(f'#conversation-list li[data-conversation-id="{conversation_id}"]')).to_have_count(0)
    assert page.request.get(f"/c/{conversation_id}").status == 404
    walk.shot(page, "3-deleted")
    walk.check_no_js_errors()
