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
