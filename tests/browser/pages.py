"""What the browser tests share about the chat page."""

# The newest answer has ended: its state left "generating" and its text is no longer streaming.
ANSWER_ENDED = """() => {
  const answers = document.querySelectorAll("#messages article[data-role=assistant]");
  const answer = answers[answers.length - 1];
  return Boolean(answer && answer.dataset.state && answer.dataset.state !== "generating"
    && !answer.querySelector("[data-markdown]").hasAttribute("data-streaming"));
}"""


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
# Generous: other jobs may share the 2 cores; a healthy answer takes a few seconds.
ANSWER_TIMEOUT_MS = 90_000


def wait_for_answer_end(page, timeout: float = ANSWER_TIMEOUT_MS) -> dict:
    """Wait until the newest answer has ended and the composer is ready again; return what it shows."""
    page.wait_for_function(ANSWER_ENDED, timeout=timeout)
    page.wait_for_selector("#send:not(.hidden)", timeout=5_000)
    answer = page.locator(LAST_ANSWER)
    return {
        "id": answer.get_attribute("data-message-id"),
        "state": answer.get_attribute("data-state"),
        "text": normalized(answer.locator("[data-markdown]").inner_text()),
        "label": answer.locator("[data-state-label]").inner_text().strip(),
        "speed": answer.locator("[data-speed]").inner_text().strip(),
    }


def wait_for_streaming(page, characters: int = 20, timeout: float = ANSWER_TIMEOUT_MS) -> None:
    """Wait until the newest answer has streamed at least `characters` characters."""
    page.wait_for_function(
        """n => {
          const answers = document.querySelectorAll("#messages article[data-role=assistant]");
          const answer = answers[answers.length - 1];
          return answer && answer.querySelector("[data-markdown]").textContent.trim().length >= n;
        }""",
        arg=characters,
        timeout=timeout,
    )


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
