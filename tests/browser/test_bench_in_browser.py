"""The benchmark pages as the admin sees them: headless Chromium, the real server, both bundled
models (SmolLM2-135M and Gemma-3-270M), the shipped suites.

The server here is one of its own, on which the admin has already run the quick suite from the
command line while the server was idle: the page's run must then show beside it, in the history
and in the charts. The tiny models fail most checks; what is checked is that every answer has
its verdict, pass or fail, not that they pass.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.browser.conftest import log_in_through_form
from tests.browser.pages import ANSWER_ENDED, new_chat

playwright = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

ROOT = Path(__file__).resolve().parents[2]
GEMMA_FILE = ROOT / "instance" / "models" / "gemma-3-270m-q4_k_m.gguf"
SMOLLM2, GEMMA = "SmolLM2-135M-Instruct.Q4_1", "gemma-3-270m-q4_k_m"
MODELS = (SMOLLM2, GEMMA)
ESSENTIEL = ("Jeu snake en Python", "Capitale et fleuve", "Résumé en 40 mots", "Calcul de production")
USERNAME, PASSWORD = "admin", "une phrase de passe assez longue"
RUN_TIMEOUT = 300  # seconds; about 70 on two idle cores
FILLED_COLUMNS = ("time", "ok", "cpu", "ram", "speed")  # the summary's measured columns
MEASURED_COLUMNS = ("time", "ttft", "speed", "cpu", "ram", "model-memory")  # per model and prompt

# What the run page shows now: its state, the progress bar and the step it names.
PROGRESS = """() => {
  const bar = document.querySelector("[data-progress-bar]");
  const current = document.querySelector("[data-progress-current]");
  return {
    state: document.querySelector("h1 [data-state]")?.dataset.state || "",
    value: bar ? Number(bar.value) : null,
    max: bar ? Number(bar.max) : null,
    current: current ? current.textContent.trim() : "",
  };
}"""

# Every status line the chat page shows under the answer ("Waiting for the model…" when queued).
RECORD_STATUSES = """() => {
  window.__statuses = [];
  new MutationObserver(() => {
    document.querySelectorAll("#messages [data-status]").forEach((status) => {
      const text = status.textContent.trim();
      if (text && !window.__statuses.includes(text)) window.__statuses.push(text);
    });
  }).observe(document.getElementById("messages"), {
    subtree: true, childList: true, characterData: true, attributes: true,
  });
}"""


@pytest.fixture(scope="module")
def bench_server(tmp_path_factory: pytest.TempPathFactory):
    """A server whose models folder holds Gemma beside the packaged SmolLM2, its admin account,
    and a run of the quick suite made from the command line."""
    if not GEMMA_FILE.exists():
        pytest.skip("Gemma-3-270M is assembled by setup")
    from benchmarks.client import ChatClient
    from benchmarks.server import LiveServer

    models = tmp_path_factory.mktemp("bench-models")
    (models / GEMMA_FILE.name).symlink_to(GEMMA_FILE)
    env = {"MODELS_DIR": str(models), "MAX_ANSWER_TOKENS": "24"}  # the chat's answers: short
    server = LiveServer(tmp_path_factory.mktemp("bench-instance"), env)
    # The command line's run first: it refuses while the server runs on the same instance.
    server.instance_dir.mkdir(parents=True, exist_ok=True)
    server.flask("db", "upgrade")
    began = time.monotonic()
    cli = server.flask("bench", "run", "--suite", "rapide", "--models", f"{SMOLLM2},{GEMMA}")
    print(f"\nthe command line's run (server stopped): {time.monotonic() - began:.1f} s\n{cli.stdout}")
    with server:
        assert ChatClient(server.base_url).register(USERNAME, PASSWORD).ok  # the first: the admin
        yield server


@pytest.fixture
def problems() -> list[str]:
    """Script errors and what the Content Security Policy refused, on any page of the test."""
    return []


@pytest.fixture
def page(browser, bench_server, problems):
    # English: the sentences checked here are the code's own, whatever the catalogue holds.
    context = browser.new_context(
        locale="en-US", base_url=bench_server.base_url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in_through_form(page, bench_server.base_url, USERNAME, PASSWORD)
    yield page
    context.close()


def open_benchmarks(page) -> None:
    """From the chat page, the way the admin goes: Models, then Benchmarks."""
    page.click('a[href="/admin/models"]')
    page.wait_for_url(re.compile(r"/admin/models$"))
    page.click('a[href="/admin/benchmarks"]')
    page.wait_for_url(re.compile(r"/admin/benchmarks$"))


def start_run(page, models: tuple[str, ...], suite: str) -> int:
    form = page.locator("[data-start-form]")
    for box in form.locator("input[name=models]").all():
        box.set_checked(box.get_attribute("value") in models)
    form.locator("select[name=suite]").select_option(suite)
    form.locator("input[name=start][value=warm]").check()
    with page.expect_navigation():
        form.locator("[data-start]").click()
    found = re.search(r"/admin/benchmarks/runs/(\d+)$", page.url)
    assert found, page.url
    return int(found.group(1))


def follow_progress(page, timeout: float = RUN_TIMEOUT) -> list[dict]:
    """What the run page shows, sampled until it has reloaded itself on the finished run."""
    samples: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            shown = page.evaluate(PROGRESS)
        except playwright.Error:  # the page is reloading itself
            shown = None
        if shown and shown["value"] is None and shown["state"] not in ("", "queued", "running"):
            return samples
        if shown and shown["value"] is not None:
            samples.append({**shown, "at": time.monotonic()})
        page.wait_for_timeout(300)
    raise AssertionError(f"the run did not end within {timeout} s; last shown: {samples[-1:]}")


def cells(row, columns) -> dict[str, str]:
    return {c: " ".join(row.locator(f'td[data-col="{c}"]').inner_text().split()) for c in columns}


def chart_bars(page) -> dict[str, int]:
    """Each chart's bars: how many labels name each model, and how many bars are drawn."""
    speed = page.locator("[data-charts] svg").first
    labels = speed.locator("text").all_text_contents()
    shown = {model: sum(label.startswith(model + " · ") for label in labels) for model in MODELS}
    return {**shown, "bars": speed.locator("rect").count()}


def test_the_admin_runs_the_essential_suite_on_both_models_from_the_page_and_reads_every_figure(
    page, problems, artifacts_dir: Path
):
    open_benchmarks(page)
    began = time.monotonic()
    run_id = start_run(page, MODELS, "essentiel")
    samples = follow_progress(page)
    print(f"\nthe page's run of the essentiel suite on both models: {time.monotonic() - began:.1f} s")

    # Watched while it ran: the bar moved on, and the step named the model and the prompt.
    values = [s["value"] for s in samples]
    assert values == sorted(values) and max(values) > min(values), values
    assert {s["max"] for s in samples} == {8}
    for model in MODELS:
        assert any(model in s["current"] and any(p in s["current"] for p in ESSENTIEL) for s in samples), (
            model,
            sorted({s["current"] for s in samples}),
        )
    print(f"{len(samples)} samples of the progress bar, values {sorted(set(values))}")

    assert page.url.endswith(f"/admin/benchmarks/runs/{run_id}")
    assert page.locator("h1 [data-state]").get_attribute("data-state") == "done"
    assert "from this page" in page.inner_text("main") and "warm start" in page.inner_text("main")
    page.screenshot(path=str(artifacts_dir / "bench-run.png"), full_page=True)

    # The admin's table: Model | Size | Time | OK | CPU | RAM | Tokens/s, every figure there.
    summary = page.locator("[data-summary] tbody tr")
    assert [row.get_attribute("data-summary-model") for row in summary.all()] == list(MODELS)
    for row in summary.all():
        shown = cells(row, FILLED_COLUMNS)
        shown["size"] = row.locator("td").nth(1).inner_text().strip()
        print(row.get_attribute("data-summary-model"), shown)
        assert all(value and "—" not in value for value in shown.values()), shown
        assert re.fullmatch(r"(yes|no|partly) \([0-4]/4\)", shown["ok"]), shown
        assert re.fullmatch(r"\d+ % \d+\.\d\d GB", shown["ram"]) and shown["size"].endswith(" GB"), shown

    # Per model and prompt: every figure, and a pass or a fail with the check's reason.
    results = page.locator("[data-results] tbody tr").all()
    assert len(results) == 8
    verdicts = []
    for row in results:
        shown = cells(row, MEASURED_COLUMNS)
        assert all(value and "—" not in value for value in shown.values()), shown
        check = row.locator('td[data-col="check"]')
        [verdict] = check.locator("[data-passed]").all()
        verdicts.append(verdict.get_attribute("data-passed"))
        assert check.locator("span.block").first.inner_text().strip(), "the check says why"
    assert set(verdicts) <= {"yes", "no"}, verdicts
    print(f"checks passed: {verdicts.count('yes')}/8")

    machine = " ".join(page.locator("[data-machine]").inner_text().split())
    assert page.locator("[data-machine-cpu]").inner_text().strip()
    assert re.search(r"\d+ physical, \d+ logical", machine) and "llama-server" in machine, machine

    answers = page.locator("[data-answers] details")
    assert answers.count() == 8
    answers.first.locator("summary").click()
    answer = answers.first.locator("[data-answer]")
    assert answer.is_visible() and answer.inner_text().strip() not in ("", "—")

    # The history and the charts: this run, and the command line's run before it.
    page.click('main nav a[href="/admin/benchmarks"]')
    page.wait_for_url(re.compile(r"/admin/benchmarks$"))
    history = page.locator("[data-history] tbody tr")
    rows = {row.get_attribute("data-run-id"): " ".join(row.inner_text().split()) for row in history.all()}
    assert len(rows) == 2, rows
    assert re.search(r"Essentiel .* this page done 8/8$", rows[str(run_id)]), rows
    [cli_row] = [text for run, text in rows.items() if run != str(run_id)]
    assert re.search(r"Rapide .* command line done 4/4$", cli_row), rows
    assert all(SMOLLM2 in text and GEMMA in text for text in rows.values()), rows

    picker = page.locator("select[data-chart-suite]")
    assert picker.locator("option").evaluate_all("(options) => options.map((o) => o.value)") == [
        "essentiel",
        "rapide",
    ]
    assert chart_bars(page) == {SMOLLM2: 1, GEMMA: 1, "bars": 2}
    page.screenshot(path=str(artifacts_dir / "bench-index.png"), full_page=True)
    picker.select_option("rapide")
    with page.expect_navigation():
        page.locator("form:has(select[data-chart-suite]) button").click()
    assert page.url.endswith("?suite=rapide")
    assert chart_bars(page) == {SMOLLM2: 1, GEMMA: 1, "bars": 2}
    page.goto("/admin/dashboard")  # the admin's other way in
    assert page.locator('main a[href="/admin/benchmarks"]').is_visible()
    assert problems == [], "no script error, nothing the Content Security Policy refused"


def test_the_admin_cancels_a_benchmark_and_the_chat_answers_at_once(page, problems):
    open_benchmarks(page)
    # Gemma first: its snake answer takes half a minute, so the cancel surely comes in the middle.
    run_id = start_run(page, (GEMMA,), "essentiel")
    # As soon as the first measured answer is being written: it is the one the Stop must end.
    page.wait_for_function(
        f"() => document.querySelector('[data-progress-current]').textContent.includes({ESSENTIEL[0]!r})",
        timeout=60_000,
    )
    cancelled_at = time.monotonic()
    with page.expect_navigation():
        page.click("[data-cancel]")
    page.wait_for_selector('h1 [data-state="cancelled"]', timeout=30_000)
    print(f"\nthe run page said cancelled {time.monotonic() - cancelled_at:.2f} s after the click")
    assert page.locator("[data-progress-bar]").count() == 0
    assert page.url.endswith(f"/admin/benchmarks/runs/{run_id}")
    assert "This benchmark has no results." in page.inner_text("main")  # the cut answer is no measure

    new_chat(page)
    page.evaluate(RECORD_STATUSES)
    asked_at = time.monotonic()
    page.fill("#prompt", "Bonjour !")
    page.click("#send")
    page.wait_for_function(ANSWER_ENDED, timeout=60_000)
    answered = time.monotonic() - asked_at
    answer = page.locator("#messages article[data-role=assistant]").last
    statuses = page.evaluate("() => window.__statuses")
    print(f"the chat's answer, right after: {answered:.2f} s; statuses shown: {statuses}")
    assert answer.get_attribute("data-state") == "complete"
    assert answer.locator("[data-markdown]").inner_text().strip()
    assert not [s for s in statuses if s.startswith("Waiting for the model")], "it never queued"
    assert problems == [], "no script error, nothing the Content Security Policy refused"
