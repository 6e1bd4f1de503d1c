"""The compare page as a user sees it: headless Chromium, the real server, two real models.

The server here is one of its own: its models folder holds Gemma-3-270M (assembled by setup)
beside the packaged SmolLM2, and its answers are kept short so that both end in seconds.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.conftest import log_in_through_form

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

ROOT = Path(__file__).resolve().parents[2]
GEMMA_FILE = ROOT / "instance" / "models" / "gemma-3-270m-q4_k_m.gguf"
SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1"
GEMMA = "gemma-3-270m-q4_k_m"
USERNAME, PASSWORD = "compare", "une phrase de passe assez longue"
ANSWER_TIMEOUT_MS = 90_000  # generous: other jobs may share the 2 cores

BOTH_ENDED = """() => [...document.querySelectorAll("[data-column]")].every((column) =>
  column.dataset.state && column.dataset.state !== "generating"
  && !column.querySelector("[data-markdown]").hasAttribute("data-streaming"))"""


@pytest.fixture(scope="module")
def compare_server(tmp_path_factory: pytest.TempPathFactory):
    if not GEMMA_FILE.exists():
        pytest.skip("Gemma-3-270M is assembled by setup")
    from benchmarks.client import ChatClient
    from benchmarks.server import LiveServer

    models = tmp_path_factory.mktemp("compare-models")
    (models / GEMMA_FILE.name).symlink_to(GEMMA_FILE)
    env = {
        "MODELS_DIR": str(models),
        "MAX_ANSWER_TOKENS": "24",
        "GENERATION_TEMPERATURE": "0",
        "GENERATION_SEED": "0",
    }
    with LiveServer(tmp_path_factory.mktemp("compare-instance"), env) as server:
        assert ChatClient(server.base_url).register(USERNAME, PASSWORD).ok
        yield server


@pytest.fixture
def page(browser, compare_server):
    # English: the sentences checked here are the code's own, whatever the catalogue holds.
    context = browser.new_context(
        locale="en-US", base_url=compare_server.base_url, viewport={"width": 1280, "height": 800}
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def column_shown(page, name: str) -> dict:
    column = page.locator(f'[data-column="{name}"]')
    timings = column.locator("[data-timings]")
    return {
        "model": column.locator("[data-model-name]").inner_text().strip(),
        "state": column.get_attribute("data-state"),
        "text": " ".join(column.locator("[data-markdown]").inner_text().split()),
        "timings_shown": timings.is_visible(),
        "speed": timings.locator("[data-speed]").inner_text(),
        "tokens": int(timings.locator("[data-tokens]").inner_text()),
        "waited": float(timings.locator("[data-waited]").inner_text().removesuffix(" s").replace(",", "")),
    }


def test_a_user_compares_two_real_models_and_sees_both_answers_with_their_timings(
    page, compare_server, artifacts_dir: Path
):
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in_through_form(page, compare_server.base_url, USERNAME, PASSWORD)
    page.get_by_role("link", name="Compare").click()
    page.wait_for_url(re.compile(r"/compare$"))
    page.wait_for_function("() => window.Markdown !== undefined")
    page.select_option("#model-a", SMOLLM2)
    page.select_option("#model-b", GEMMA)
    # Each model takes both cores of this machine: the page says they take turns.
    plan = page.locator("#plan")
    page.wait_for_function("() => document.getElementById('plan').dataset.together === 'false'")
    assert "the second answer starts when the first ends" in plan.inner_text()

    answers: list[str] = []
    page.on("request", lambda r: answers.append(r.url) if r.url.endswith("/compare/answers") else None)
    page.fill("#prompt", "Say hello in one short sentence.")
    page.click("#send")
    page.wait_for_selector("#stop:not(.hidden)")
    page.wait_for_function(BOTH_ENDED, timeout=ANSWER_TIMEOUT_MS)
    page.screenshot(path=str(artifacts_dir / "compare-two-models.png"), full_page=True)

    first, second = column_shown(page, "a"), column_shown(page, "b")
    assert len(answers) == 2, "one request per model, both sent at once"
    assert (first["model"], second["model"]) == ("SmolLM2-135M-Instruct.Q4_1", "gemma-3-270m-q4_k_m")
    for shown in (first, second):
        assert shown["state"] == "complete", shown
        assert shown["text"], shown
        assert shown["timings_shown"] and shown["speed"].endswith("tokens/s"), shown
        assert 0 < shown["tokens"] <= 24, shown
    # One after the other: whichever started second waited for the first to end.
    assert max(first["waited"], second["waited"]) > 0.2, (first, second)
    page.wait_for_selector("#send:not(.hidden)")
    assert page.locator("#stop").is_hidden()
    assert problems == [], "no script error, nothing the Content Security Policy refused"
