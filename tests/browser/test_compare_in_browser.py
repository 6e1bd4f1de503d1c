"""The compare page as a user sees it: headless Chromium, the real server, two real models.

The server here is one of its own: its models folder holds Gemma-3-270M (assembled by setup)
beside the packaged SmolLM2, and its answers are kept short so that both end in seconds.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.conftest import log_in_through_form
from tests.browser.pages import ANSWER_STALL_MS, ANSWER_TIMEOUT_MS

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

ROOT = Path(__file__).resolve().parents[2]
GEMMA_FILE = ROOT / "instance" / "models" / "gemma-3-270m-q4_k_m.gguf"
SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1"
GEMMA = "gemma-3-270m-q4_k_m"
USERNAME, PASSWORD = "compare", "une phrase de passe assez longue"

BOTH_ENDED = """() => [...document.querySelectorAll("[data-column]:not(.hidden)")].every((column) =>
  column.dataset.state && column.dataset.state !== "generating"
  && !column.querySelector("[data-markdown]").hasAttribute("data-streaming"))"""
# Real models take as long as this machine makes them: the columns are waited for as long as one
# of them moves (its state, text, or the phase it waits in, not the seconds counted), as the chat's
# answers are (tests/browser/pages.py).
BOTH_ENDED_WHILE_MOVING = """(stallMs) => {
  const columns = [...document.querySelectorAll("[data-column]:not(.hidden)")];
  if ((BOTH_ENDED)()) return true;
  const moved = columns.map((column) => [column.dataset.state,
    column.querySelector("[data-markdown]").textContent.length,
    (column.querySelector("[data-status]")?.textContent || "").replace(/\\d+(?:[.,]\\d+)?\\s*s\\b/g, "")]
    .join(" | ")).join(" || ");
  const watch = (window.__columnsWatch ??= { moved, since: performance.now() });
  if (moved !== watch.moved) Object.assign(watch, { moved, since: performance.now() });
  if (performance.now() - watch.since > stallMs) {
    throw new Error(`no column has moved for ${stallMs / 1000} s: ${moved}`);
  }
  return false;
}""".replace("BOTH_ENDED", BOTH_ENDED)


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
        "total": float(timings.locator("[data-total]").inner_text().removesuffix(" s").replace(",", "")),
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
    page.wait_for_function(BOTH_ENDED_WHILE_MOVING, arg=ANSWER_STALL_MS, timeout=ANSWER_TIMEOUT_MS)
    page.screenshot(path=str(artifacts_dir / "compare-two-models.png"), full_page=True)

    first, second = column_shown(page, "a"), column_shown(page, "b")
    assert len(answers) == 2, "one request per model, both sent at once"
    # Named as users read them (no display name set: made from the ids), not by their file names.
    assert (first["model"], second["model"]) == ("SmolLM2 135M Instruct (Q4_1)", "gemma 3 270m (q4_k_m)")
    for shown in (first, second):
        assert shown["state"] == "complete", shown
        assert shown["text"], shown
        assert shown["timings_shown"] and shown["speed"].endswith("tokens/s"), shown
        assert 0 < shown["tokens"] <= 24, shown
    # One after the other: whichever started second waited for most of the first's answer (its
    # request reached the server's line a moment after the first's; a ratio, not a number of
    # seconds, which would hold on a slow machine only).
    waiting, other = sorted((first, second), key=lambda shown: shown["waited"], reverse=True)
    print(f"waited {waiting['waited']:.2f} s for an answer that took {other['total']:.2f} s")
    assert waiting["waited"] >= 0.5 * other["total"] > 0, (first, second)
    page.wait_for_selector("#send:not(.hidden)")
    assert page.locator("#stop").is_hidden()
    assert problems == [], "no script error, nothing the Content Security Policy refused"


# -- up to four models, answered in their columns' order, cut answers marked (issue 16, item 13) --
# An Ollama-protocol host whose models are scripted (tests/ollama_server.py): what is checked is
# the page, whatever this machine's speed.
THINKER, PLAIN = "deepseek-r1:1.5b", "phi3:mini"
SCRIPT = ["Une", " réponse", " **courte**", " et", " sûre", " ici", "."]  # 7 pieces
LONGEST = 5  # MAX_ANSWER_TOKENS: every scripted answer is cut by it
PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1280, "height": 800}

# Each request to /compare/answers: when the page sent it, and when its answer's headers came back.
RECORD_REQUESTS = """() => {
  window.compareRequests = [];
  const original = window.fetch;
  window.fetch = async (url, options) => {
    if (!String(url).endsWith("/compare/answers")) return original(url, options);
    const record = { model: JSON.parse(options.body).model, sent: performance.now(), answered: null };
    window.compareRequests.push(record);
    const response = await original(url, options);
    record.answered = performance.now();
    return response;
  };
}"""
# Per column: when its first words showed, and every status line it showed.
RECORD_COLUMNS = """() => {
  window.columnsSeen = {};
  document.querySelectorAll("[data-column]").forEach((column) => {
    const seen = { firstText: null, statuses: [] };
    window.columnsSeen[column.dataset.column] = seen;
    new MutationObserver(() => {
      const status = column.querySelector("[data-status]").textContent.trim();
      if (status && seen.statuses.at(-1) !== status) seen.statuses.push(status);
      if (seen.firstText === null && column.querySelector("[data-markdown]").textContent.trim()) {
        seen.firstText = performance.now();
      }
    }).observe(column, { subtree: true, childList: true, characterData: true });
  });
}"""
ALL_ENDED = """() => [...document.querySelectorAll("[data-column]:not(.hidden)")].every((column) =>
  column.dataset.state && column.dataset.state !== "generating")
  && !document.querySelector("#send.hidden")"""


@pytest.fixture(scope="module")
def scripted_host():
    from dataclasses import replace

    from tests.ollama_server import OllamaStandIn

    host = OllamaStandIn()
    thinker = host.models[THINKER]
    host.models = {THINKER: thinker, PLAIN: replace(thinker, capabilities=["completion"])}
    host.script = SCRIPT
    with host:
        yield host


@pytest.fixture(scope="module")
def scripted_server(tmp_path_factory: pytest.TempPathFactory, scripted_host):
    from benchmarks.client import ChatClient
    from benchmarks.server import LiveServer

    env = {
        "OLLAMA_HOSTS": scripted_host.url,
        "LLAMA_ENGINE": "inprocess",
        "MAX_ANSWER_TOKENS": str(LONGEST),
    }
    with LiveServer(tmp_path_factory.mktemp("compare-scripted-instance"), env) as server:
        assert ChatClient(server.base_url).register(USERNAME, PASSWORD).ok
        yield server


@pytest.fixture
def scripted_page(browser, scripted_server, scripted_host):
    context = browser.new_context(locale="en-US", base_url=scripted_server.base_url, viewport=DESKTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in_through_form(page, scripted_server.base_url, USERNAME, PASSWORD)
    page.goto("/compare")
    page.wait_for_function("() => window.Markdown !== undefined")
    yield page
    scripted_host.stall_after = None
    context.close()
    assert problems == [], "no script error, nothing the Content Security Policy refused"


def add_models(page, *models: str) -> None:
    """Pick the first two models, then add a column for each further one."""
    page.select_option("#model-a", models[0])
    page.select_option("#model-b", models[1])
    for name, model in zip("cd", models[2:], strict=False):
        page.click("#add-model")
        page.select_option(f"#model-{name}", model)


def test_the_columns_are_answered_in_their_order_each_showing_its_real_state(scripted_page):
    page = scripted_page
    add_models(page, THINKER, THINKER, THINKER)  # one model, one answer at a time
    page.wait_for_function("() => document.getElementById('plan').dataset.together === 'false'")
    # (the plan is asked again at each model added: the two-model words may show a moment first)
    page.wait_for_function(
        "() => document.getElementById('plan').innerText"
        ".includes('each answer starts when the one before it ends')"
    )
    page.evaluate(RECORD_REQUESTS)
    page.evaluate(RECORD_COLUMNS)
    page.fill("#prompt", "Dis bonjour.")
    page.click("#send")
    page.wait_for_function(ALL_ENDED, timeout=30_000)
    requests = page.evaluate("() => window.compareRequests")
    seen = page.evaluate("() => window.columnsSeen")
    assert len(requests) == 3
    for before, after in zip(requests, requests[1:], strict=False):
        assert before["answered"] <= after["sent"], (
            "each column's request leaves once the one before is in line"
        )
    shown = [seen[name]["firstText"] for name in "abc"]
    assert None not in shown and shown == sorted(shown), f"the first column is answered first: {seen}"
    # Waiting, each says so: "position 1" never shows in a column answered before the others.
    assert not any("position" in s for s in seen["a"]["statuses"]), seen["a"]
    assert any(s.startswith("Waiting") for s in seen["c"]["statuses"]), seen["c"]


def test_four_models_side_by_side_with_every_cut_answer_marked_at_both_widths(
    scripted_page, artifacts_dir: Path
):
    page = scripted_page
    add_models(page, THINKER, PLAIN, PLAIN, THINKER)
    assert page.locator("#add-model").is_hidden(), "four models at most"
    assert page.inner_text("#send") == "Send to all 4"
    page.fill("#prompt", "Une question courte ?")
    page.click("#send")
    page.wait_for_function(ALL_ENDED, timeout=30_000)
    for name in "abcd":
        column = page.locator(f'[data-column="{name}"]')
        assert column.get_attribute("data-state") == "complete"
        marker = column.locator("[data-cut]")
        assert marker.is_visible() and column.get_attribute("data-cut") == "length"
        assert marker.inner_text() == "Incomplete answer: it reached the longest answer allowed"
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        for theme in ("light", "dark"):
            page.emulate_media(color_scheme=theme)
            page.screenshot(
                path=str(artifacts_dir / f"compare-four-models-{viewport['width']}-{theme}.png"),
                full_page=True,
            )
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_stopped_answer_is_marked_as_stopped(scripted_page, scripted_host, artifacts_dir: Path):
    page = scripted_page
    add_models(page, THINKER, PLAIN, THINKER)
    scripted_host.stall_after = 2  # the answers go silent after two pieces: Stop ends them
    page.fill("#prompt", "Une question ?")
    page.click("#send")
    page.wait_for_function(
        "() => document.querySelector('[data-column=\"a\"] [data-markdown]').textContent.trim() !== ''"
    )
    page.click("#stop")
    page.wait_for_function(ALL_ENDED, timeout=30_000)
    page.screenshot(path=str(artifacts_dir / "compare-stopped-1280-light.png"), full_page=True)
    for name in "abc":
        column = page.locator(f'[data-column="{name}"]')
        assert column.get_attribute("data-cut") == "stopped", name
        assert column.locator("[data-cut]").inner_text() == "Incomplete answer: stopped"
