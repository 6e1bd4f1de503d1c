"""What the browser tests share about the chat page."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.patience import patience_ms

# The newest answer has ended: its state left "generating" and its text is no longer streaming.
ANSWER_ENDED = """() => {
  const answers = document.querySelectorAll("#messages article[data-role=assistant]");
  const answer = answers[answers.length - 1];
  return Boolean(answer && answer.dataset.state && answer.dataset.state !== "generating"
    && !answer.querySelector("[data-markdown]").hasAttribute("data-streaming"));
}"""


# The two sizes every page is seen at, and how wide the page is (a phone scrolls sideways when
# it is wider than the screen).
DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
OVERFLOW = "() => document.documentElement.scrollWidth"


def screenshots(page, artifacts_dir: Path, name: str) -> None:
    """The page at both sizes, in both themes; on a phone, nothing wider than the screen."""
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        for theme in ("light", "dark"):
            page.emulate_media(color_scheme=theme)
            page.screenshot(
                path=str(artifacts_dir / f"{name}-{viewport['width']}-{theme}.png"), full_page=True
            )
        if viewport is PHONE:
            assert page.evaluate(OVERFLOW) <= PHONE["width"], f"{name}: wider than a phone's screen"
    page.set_viewport_size(DESKTOP)
    page.emulate_media(color_scheme="light")


def normalized(text: str) -> str:
    return " ".join(text.split())


def new_chat(page) -> None:
    page.goto("/")
    page.wait_for_selector("#prompt:not([disabled])")
    page.wait_for_function("() => window.Markdown !== undefined")


# --- Shared by the journeys (tests/browser/test_journeys_in_browser.py) ---------------------------

# The two screens every journey is walked on. The phone is a touch screen; its sidebar hides
# behind the ☰ button.
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
LAST_ANSWER = "#messages article[data-role=assistant] >> nth=-1"
LAST_QUESTION = "#messages article[data-role=user] >> nth=-1"
# A real model's answer is waited for as long as it moves (tests/patience.py): how long it takes
# depends on the machine and what else runs on it, not on what the tests check. An answer that
# has not moved (state, text, thinking, the phase it waits in) for ANSWER_STALL_MS fails the
# wait, saying where it stood; ANSWER_TIMEOUT_MS only bounds a run that never ends.
ANSWER_STALL_MS = patience_ms(120_000)
ANSWER_TIMEOUT_MS = patience_ms(900_000)


def _while_moving(done: str) -> str:
    """A predicate for `wait_for_function`: true once `done(answer, arg)` holds for the newest
    answer; an error once that answer has not moved for `stallMs`."""
    return f"""([arg, stallMs]) => {{
  const answers = document.querySelectorAll("#messages article[data-role=assistant]");
  const answer = answers[answers.length - 1];
  if (answer && ({done})(answer, arg)) return true;
  const part = (selector) => (answer && answer.querySelector(selector)?.textContent) || "";
  const moved = [answers.length, answer?.dataset.state, part("[data-markdown]").length,
    part("[data-thinking-block]").length,
    part("[data-status]").replace(/\\d+(?:[.,]\\d+)?\\s*s\\b/g, "")].join(" | ");  // not the seconds counted
  const watch = (window.__answerWatch ??= {{ moved, since: performance.now() }});
  if (moved !== watch.moved) Object.assign(watch, {{ moved, since: performance.now() }});
  if (performance.now() - watch.since > stallMs) {{
    throw new Error(`the answer has not moved for ${{stallMs / 1000}} s: ${{moved}}`);
  }}
  return false;
}}"""


ENDED = """(answer) => Boolean(answer.dataset.state && answer.dataset.state !== "generating"
  && !answer.querySelector("[data-markdown]").hasAttribute("data-streaming"))"""
STREAMED = """(answer, n) => answer.querySelector("[data-markdown]").textContent.trim().length >= n"""


def wait_while_moving(page, done: str, arg=None, timeout: float = ANSWER_TIMEOUT_MS) -> None:
    """Wait until `done(answer, arg)` holds for the newest answer, as long as that answer moves."""
    page.evaluate("() => { delete window.__answerWatch; }")
    page.wait_for_function(_while_moving(done), arg=[arg, ANSWER_STALL_MS], timeout=timeout)


def wait_for_answer_end(page, timeout: float | None = None) -> dict:
    """Wait until the newest answer has ended and the composer is ready again; return what it
    shows. Without `timeout`, as long as the answer moves; with one (a limit that is part of the
    behaviour checked, e.g. Stop's), within it, and the time it took is printed."""
    began = time.monotonic()
    if timeout is None:
        wait_while_moving(page, ENDED)
    else:
        page.wait_for_function(ANSWER_ENDED, timeout=timeout)
        took = time.monotonic() - began
        print(f"the answer ended {took:.2f} s after the wait began (limit {timeout / 1000:g} s)")
    page.wait_for_selector("#send:not(.hidden)", timeout=patience_ms(5_000))
    answer = page.locator(LAST_ANSWER)
    return {
        "id": answer.get_attribute("data-message-id"),
        "state": answer.get_attribute("data-state"),
        "text": normalized(answer.locator("[data-markdown]").inner_text()),
        "label": answer.locator("[data-state-label]").inner_text().strip(),
        "speed": answer.locator("[data-speed]").inner_text().strip(),
    }


def wait_for_streaming(page, characters: int = 20) -> None:
    """Wait until the newest answer has streamed at least `characters` characters, as long as it moves."""
    wait_while_moving(page, STREAMED, arg=characters)


def register_through_form(page, username: str, password: str) -> None:
    """Create an account through the real /register form; wait for the chat page it leads to."""
    page.goto("/register")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.fill("input[name=confirm]", password)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    page.wait_for_selector("#prompt")


def open_sidebar(page) -> None:
    """Show the conversation list: always there on a wide screen, behind ☰ on a phone."""
    toggle = page.locator("#sidebar-toggle")
    if toggle.is_visible() and toggle.get_attribute("aria-expanded") != "true":
        toggle.click()
    page.locator("#sidebar").wait_for(state="visible")


@contextmanager
def fresh_pages(browser, base_url: str, **context_options) -> Iterator:
    """open_page(viewport="desktop", theme="light", **options): a page in a fresh French
    profile of the server at base_url, its script errors kept in page.errors; every profile
    closed on leaving. For the test files that start a server of their own."""
    contexts = []

    def open_page(viewport: str = "desktop", theme: str = "light", **options):
        context = browser.new_context(
            locale="fr-FR",
            base_url=base_url,
            color_scheme=theme,
            **VIEWPORTS[viewport],
            **context_options,
            **options,
        )
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.errors = errors
        return page

    try:
        yield open_page
    finally:
        for context in contexts:
            context.close()


def full_page_shot(page, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
