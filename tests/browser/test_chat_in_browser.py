"""The chat page as a user sees it: a headless Chromium against the real server and model.

Run with `python -m pytest tests/browser -m browser`. Every chat test starts a new conversation
and waits for its answer to end, so the model is free for the next test.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.browser.pages import (
    LAST_ANSWER,
    LAST_QUESTION,
    new_chat,
    normalized,
    wait_for_answer_end,
    wait_for_streaming,
)
from tests.patience import patience_ms

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

# Stop ends an answer within a few seconds, however long it would have gone on: a limit that is
# part of the behaviour, scaled for a slower machine (tests/patience.py).
STOP_TIMEOUT_MS = patience_ms(10_000)

# Installed before a message is sent: on every change under #messages, note the length of the
# newest answer's rendered text and its state. Polling from Python could miss steps.
RECORD_GROWTH = """() => {
  window.__growth = [];
  const messages = document.getElementById("messages");
  const record = () => {
    const answers = messages.querySelectorAll("article[data-role=assistant]");
    const answer = answers[answers.length - 1];
    if (!answer) return;
    const markdown = answer.querySelector("[data-markdown]");
    const sample = {
      length: markdown.textContent.length,
      state: answer.dataset.state || "",
      streaming: markdown.dataset.streaming === "true",
      stopOffered: !document.getElementById("stop").classList.contains("hidden"),
      at: performance.now(),
    };
    const last = window.__growth[window.__growth.length - 1];
    if (!last || ["length", "state", "streaming", "stopOffered"].some((key) => last[key] !== sample[key])) {
      window.__growth.push(sample);
    }
  };
  new MutationObserver(record).observe(messages, {
    subtree: true, childList: true, characterData: true, attributes: true,
  });
}"""


def shown_answer(page, message_id: str) -> dict:
    answer = page.locator(f'#messages article[data-role=assistant][data-message-id="{message_id}"]')
    answer.locator("[data-markdown][data-rendered]").wait_for()
    return {
        "state": answer.get_attribute("data-state"),
        "text": normalized(answer.locator("[data-markdown]").inner_text()),
        "label": answer.locator("[data-state-label]").inner_text().strip(),
    }


def label_for(page, state: str) -> str:
    """The label the page itself uses for an answer state, in the page's language."""
    return page.evaluate("s => JSON.parse(document.getElementById('chat').dataset.i18n)[s]", state)


def test_user_logs_in_sends_a_message_and_sees_the_answer_grow_before_it_completes(
    page, log_in, artifacts_dir: Path
):
    log_in(page)
    assert urlsplit(page.url).path == "/"
    new_chat(page)
    page.evaluate(RECORD_GROWTH)

    page.locator("#prompt").press_sequentially("Explique en quelques phrases pourquoi le ciel est bleu.")
    page.locator("#prompt").press("Enter")
    page.locator(LAST_QUESTION).wait_for()
    ended = wait_for_answer_end(page)
    page.screenshot(path=str(artifacts_dir / "answer-complete.png"), full_page=True)

    growth = page.evaluate("window.__growth")
    while_generating = [s["length"] for s in growth if s["state"] == "generating" and s["length"] > 0]
    steps = sorted(set(while_generating))
    assert while_generating == sorted(while_generating), f"the text only grows: {while_generating}"
    assert len(steps) >= 3, f"the answer should appear in several steps while generating, saw {growth}"
    assert all(
        s["streaming"] and s["stopOffered"] for s in growth if s["state"] == "generating" and s["length"]
    ), growth
    assert ended["state"] == "complete", ended
    assert ended["label"] == "", "a complete answer carries no state label"
    assert ended["text"], ended

    # The conversation got an address of its own, and the answer is stored: a reload shows it again.
    assert re.fullmatch(r"/c/\d+", urlsplit(page.url).path), page.url
    assert page.locator("#conversation-list [data-conversation-id]").count() >= 1
    page.reload()
    again = shown_answer(page, ended["id"])
    assert again["state"] == "complete"
    assert again["text"] == ended["text"]


def test_pages_load_nothing_from_outside_and_break_no_content_security_rule(
    page, context, live_server, log_in
):
    requests: list[str] = []
    console: list[str] = []
    violations: list[dict] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    # The browser's own report of each blocked resource or script, on every page of the context.
    context.expose_binding("__reportViolation", lambda _source, violation: violations.append(violation))
    context.add_init_script(
        """document.addEventListener("securitypolicyviolation", (e) => window.__reportViolation({
             directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber,
           }));"""
    )

    log_in(page)
    new_chat(page)
    page.locator("#prompt").fill("Dis bonjour.")
    page.locator("#prompt").press("Enter")
    ended = wait_for_answer_end(page)
    assert ended["state"] == "complete", ended
    page.reload()  # the stored answer, rendered by the page's scripts
    shown_answer(page, ended["id"])

    origin = urlsplit(live_server.base_url)
    paths = {urlsplit(url).path for url in requests}
    assert {"/login", "/static/js/chat.js", "/static/js/markdown.js"} <= paths, sorted(paths)
    assert any(re.fullmatch(r"/conversations/\d+/messages", p) for p in paths), sorted(paths)
    outside = [
        url
        for url in requests
        if (urlsplit(url).scheme, urlsplit(url).netloc) != (origin.scheme, origin.netloc)
    ]
    assert outside == [], f"requests left {origin.netloc}: {outside}"
    assert violations == [], violations
    csp_errors = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
    assert csp_errors == [], csp_errors
    errors = [m for m in console if m.startswith(("error:", "pageerror:"))]
    assert errors == [], errors


def test_stop_button_keeps_the_partial_answer_marked_stopped(logged_in_page):
    page = logged_in_page
    new_chat(page)
    page.locator("#prompt").fill("Écris une très longue histoire de 500 mots sur un dragon.")
    page.locator("#prompt").press("Enter")
    answer = page.locator(LAST_ANSWER)
    wait_for_streaming(page, 20)
    assert answer.get_attribute("data-state") == "generating", "the answer ended before Stop could be clicked"
    page.locator("#stop").click()

    ended = wait_for_answer_end(page, timeout=STOP_TIMEOUT_MS)
    assert ended["state"] == "stopped", ended
    assert ended["text"], "what was written before Stop is kept on the page"
    assert ended["label"] == label_for(page, "stopped") != ""
    assert page.locator("#stop").is_hidden()

    page.reload()
    again = shown_answer(page, ended["id"])
    assert again["state"] == "stopped"
    assert again["text"] == ended["text"]
    assert again["label"] == ended["label"]


def test_enter_sends_and_shift_enter_adds_a_line(logged_in_page):
    page = logged_in_page
    posts: list[str] = []
    page.on(
        "request",
        lambda request: posts.append(urlsplit(request.url).path) if request.method == "POST" else None,
    )
    new_chat(page)
    prompt = page.locator("#prompt")
    prompt.click()
    prompt.press_sequentially("Première ligne")
    prompt.press("Shift+Enter")
    prompt.press_sequentially("deuxième ligne")
    assert prompt.input_value() == "Première ligne\ndeuxième ligne"
    assert page.locator("#messages article").count() == 0
    assert posts == []

    prompt.press("Enter")
    question = page.locator(LAST_QUESTION)
    question.wait_for()
    assert question.locator("[data-content]").text_content() == "Première ligne\ndeuxième ligne"
    assert page.locator("#messages article[data-role=user]").count() == 1
    assert prompt.input_value() == ""
    # Free the model for the next test. Escape stops an answer still being written (and does
    # nothing once it has ended, unlike a click on a Stop button that may have just gone).
    page.keyboard.press("Escape")
    wait_for_answer_end(page)
    assert posts.count("/conversations") == 1, posts
    assert len([p for p in posts if re.fullmatch(r"/conversations/\d+/messages", p)]) == 1, posts


def rendered(page, source: str) -> str:
    """What the chat page's own renderer makes of model output."""
    new_chat(page)
    return page.evaluate("s => window.Markdown.render(s)", source)


def test_model_output_is_rendered_as_markdown_without_running_html(logged_in_page):
    html = rendered(
        logged_in_page,
        "**gras** <img src=x onerror=alert(1)><script>alert(2)</script> [x](javascript:alert(3))",
    )
    assert "<strong>gras</strong>" in html, html
    for forbidden in ("<img", "<script", "onerror", "javascript:"):
        assert forbidden not in html.lower(), f"{forbidden!r} in {html!r}"


def test_model_output_cannot_take_the_pages_look_or_names(logged_in_page):
    html = rendered(
        logged_in_page,
        '<a href="/x" class="fixed inset-0 z-30" id="answer-template" name="n" data-state="x">lien</a>',
    )
    assert "lien" in html, html
    for forbidden in ("class=", "id=", "name=", "data-state"):
        assert forbidden not in html, f"{forbidden!r} in {html!r}"


def test_unknown_page_shows_the_custom_404_with_a_way_back(logged_in_page):
    page = logged_in_page
    response = page.goto("/does-not-exist")
    assert response is not None and response.status == 404
    assert "404" in page.locator("main").inner_text()
    assert page.locator("#prompt").count() == 0, "the error page is not the chat page"
    back = page.locator('main a[href="/"]')
    assert back.is_visible()
    back.click()
    page.wait_for_url(re.compile(r"/$"))
    page.wait_for_selector("#prompt")


def test_on_a_phone_the_menu_button_opens_the_conversation_list(logged_in_page, artifacts_dir):
    page = logged_in_page
    page.set_viewport_size({"width": 390, "height": 760})
    new_chat(page)
    sidebar = page.locator("#sidebar")
    assert not sidebar.is_visible(), "the list leaves the whole width to the chat on a phone"
    page.click("#sidebar-toggle")
    assert sidebar.is_visible()
    assert page.locator("#sidebar-toggle").get_attribute("aria-expanded") == "true"
    assert page.locator("#sidebar button", has_text="Se déconnecter").is_visible()
    page.screenshot(path=str(artifacts_dir / "phone-conversation-list.png"))
    page.mouse.click(350, 300)  # the strip of backdrop over the chat, left uncovered
    assert not sidebar.is_visible(), "a tap beside the list closes it"
