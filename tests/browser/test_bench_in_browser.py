"""The benchmark pages as the admin sees them: headless Chromium, the real server, and an
Ollama-protocol host whose models are scripted (tests/ollama_server.py): what is checked is the
page, so its verdict must not hang on how fast this machine runs a real model. The real models'
run of the essential suite, minutes long, is a benchmark: benchmarks/bench_page.py.

The server here is one of its own, on which the admin has already run the quick suite from the
command line while the server was idle: the page's runs then show beside it, and the start form
knows how long that suite takes here.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.browser.conftest import log_in_through_form
from tests.browser.pages import DESKTOP, screenshots

playwright = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

THINKER, PLAIN = "deepseek-r1:1.5b", "phi3:mini"  # a reasoning model, and one that cannot think
USERNAME, PASSWORD = "admin", "une phrase de passe assez longue"
# What both scripted models answer, whatever the prompt: Markdown, which the run page renders.
ANSWER = ["Rome", " est", " la", " **capitale**", " de", " l'Italie", "."]
STALL_AFTER = 2  # pieces of an answer sent before a stalled host goes silent
RUN_TIMEOUT_MS = 60_000  # scripted answers take well under a second each; this is for a busy machine


@pytest.fixture(scope="module")
def host():
    """An Ollama host with two scripted models: nothing of a real model runs in these tests."""
    from tests.ollama_server import OllamaStandIn

    stand_in = OllamaStandIn()
    thinker = stand_in.models[THINKER]
    stand_in.models = {
        THINKER: thinker,
        # The lightest model of the server: the one the start form offers first.
        PLAIN: replace(thinker, capabilities=["completion"], size=40_000_000, parameter_size="3.8B"),
    }
    stand_in.script = ANSWER
    with stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def bench_server(tmp_path_factory: pytest.TempPathFactory, host):
    """A server using the host, its admin account, and a run of the quick suite made from the
    command line before it started."""
    from benchmarks.client import ChatClient
    from benchmarks.server import LiveServer

    env = {"OLLAMA_HOSTS": host.url, "OLLAMA_LIST_SECONDS": "0.5", "LLAMA_ENGINE": "inprocess"}
    server = LiveServer(tmp_path_factory.mktemp("bench-instance"), env)
    server.instance_dir.mkdir(parents=True, exist_ok=True)
    server.flask("db", "upgrade")
    # The command line's run first: it refuses while the server runs on the same instance.
    server.flask("bench", "run", "--suite", "rapide", "--models", f"{PLAIN},{THINKER}")
    with server:
        assert ChatClient(server.base_url).register(USERNAME, PASSWORD).ok  # the first: the admin
        yield server


@pytest.fixture
def problems() -> list[str]:
    """Script errors and what the Content Security Policy refused, on any page of the test."""
    return []


@pytest.fixture
def context(browser, bench_server):
    # English: the sentences checked here are the code's own, whatever the catalogue holds.
    context = browser.new_context(locale="en-US", base_url=bench_server.base_url, viewport=DESKTOP)
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context, bench_server, problems, host):
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in_through_form(page, bench_server.base_url, USERNAME, PASSWORD)
    yield page
    host.stall_after = None


def open_benchmarks(page) -> None:
    """From the chat page, the way the admin goes: Models, then Benchmarks."""
    page.click('a[href="/admin/models"]')
    page.wait_for_url(re.compile(r"/admin/models$"))
    page.click('a[href="/admin/benchmarks"]')
    page.wait_for_url(re.compile(r"/admin/benchmarks$"))


def start_run(page, models: tuple[str, ...], suite: str = "rapide", thinking: str = "default") -> int:
    form = page.locator("[data-start-form]")
    for box in form.locator("input[name=models]").all():
        box.set_checked(box.get_attribute("value") in models)
    form.locator("select[name=suite]").select_option(suite)
    form.locator("select[name=thinking]").select_option(thinking)
    with page.expect_navigation():
        form.locator("[data-start]").click()
    found = re.search(r"/admin/benchmarks/runs/(\d+)$", page.url)
    assert found, page.url
    return int(found.group(1))


def shown_state(page) -> str:
    return page.locator("h1 [data-state]").get_attribute("data-state")


def text(locator) -> str:
    return " ".join(locator.inner_text().split())


def test_the_start_form_offers_the_smallest_run_and_says_how_long_it_takes_here(
    page, problems, artifacts_dir: Path
):
    open_benchmarks(page)
    form = page.locator("[data-start-form]")
    ticked = [box.get_attribute("value") for box in form.locator("input[name=models]:checked").all()]
    assert ticked == [PLAIN], "the lightest model alone"
    assert form.locator("select[name=suite]").input_value() == "rapide"
    assert form.locator("select[name=thinking]").input_value() == "default"
    assert form.locator("input[name=repetitions]").input_value() == "1"
    # The command line ran this suite with this model here: the form knows how long it takes.
    estimate = page.locator("[data-estimate]")
    assert re.fullmatch(r"About \d+ s on this machine, from its past runs\.", text(estimate)), text(estimate)
    form.locator("select[name=suite]").select_option("essentiel")  # never run here
    assert text(estimate).startswith("How long it will take: unknown yet")
    form.locator("select[name=suite]").select_option("rapide")
    form.locator(f"input[name=models][value='{THINKER}']").check()
    form.locator("input[name=repetitions]").fill("3")
    assert re.fullmatch(r"About \d+ s on this machine, from its past runs\.", text(estimate)), text(estimate)
    assert page.locator("[data-estimate][data-known=true]").count() == 1
    screenshots(page, artifacts_dir, "bench-start-form")
    assert problems == [], "no script error, nothing the Content Security Policy refused"


def test_the_run_page_follows_its_state_and_machine_without_a_reload_and_a_cancel_says_how_far(
    page, context, host, problems, artifacts_dir: Path
):
    host.stall_after = STALL_AFTER  # every measured answer goes silent: the runs stay running
    open_benchmarks(page)
    first = start_run(page, (PLAIN,))
    page.wait_for_function("() => document.querySelector('h1 [data-state]').dataset.state === 'running'")
    open_benchmarks(page)
    second = start_run(page, (PLAIN,))  # queued behind the first
    assert shown_state(page) == "queued"
    assert "Not known yet" in text(page.locator("[data-machine]"))
    page.evaluate("() => { window.stayed = true; }")  # gone if the page reloads

    other = context.new_page()  # the first run, cancelled from its own page
    other.goto(f"/admin/benchmarks/runs/{first}")
    with other.expect_navigation():
        other.click("[data-cancel]")
    other.close()

    page.wait_for_function(
        "() => document.querySelector('h1 [data-state]').dataset.state === 'running'"
        " && document.querySelector('[data-machine-cpu]') !== null",
        timeout=RUN_TIMEOUT_MS,
    )
    assert page.evaluate("() => window.stayed === true"), "the page followed the run without a reload"
    assert re.search(r"\d+ physical, \d+ logical", text(page.locator("[data-machine]")))
    page.wait_for_function(
        "() => document.querySelector('[data-progress-current]').textContent.includes('Capitale')"
    )
    screenshots(page, artifacts_dir, "bench-run-running")

    with page.expect_navigation():
        page.click("[data-cancel]")
    page.wait_for_selector('h1 [data-state="cancelled"]', timeout=RUN_TIMEOUT_MS)
    assert page.url.endswith(f"/admin/benchmarks/runs/{second}")
    ended = text(page.locator("[data-ended]"))
    assert re.fullmatch(r"Cancelled after 0 of 2 steps; it ran for \d+\.\d\d s\.", ended), ended
    screenshots(page, artifacts_dir, "bench-run-cancelled")
    assert problems == [], "no script error, nothing the Content Security Policy refused"


def test_a_finished_run_reads_plainly_with_each_answer_rendered_under_its_prompt(
    page, problems, artifacts_dir: Path
):
    open_benchmarks(page)
    began = time.monotonic()
    run_id = start_run(page, (PLAIN, THINKER), thinking="both")
    page.wait_for_selector('h1 [data-state="done"]', timeout=RUN_TIMEOUT_MS)
    print(f"\nthe page's run (6 scripted answers): {time.monotonic() - began:.1f} s")
    assert page.url.endswith(f"/admin/benchmarks/runs/{run_id}")
    assert re.fullmatch(r"Done: 6 steps in .+\.", text(page.locator("[data-ended]")))

    header = text(page.locator("main p", has_text="Asked on"))
    assert f"thinking, for {THINKER}: on and off" in header, header  # not for the model that cannot

    summary = page.locator("[data-summary] tbody tr")
    assert summary.count() == 3  # the plain model, and the thinker with thinking on and off
    for row in summary.all():
        # "Rome" is in every answer; 56 in none: one of the two checks passes.
        assert text(row.locator('td[data-col="ok"]')) == "1 of 2"
    assert "Right answers" in text(page.locator("[data-summary] thead"))

    answers = page.locator("[data-answers] details")
    assert answers.count() == 6
    first = answers.first
    first.locator("summary").click()
    prompt, answer = first.locator("[data-prompt]"), first.locator("[data-answer]")
    assert text(prompt) == "Quelle est la capitale de l'Italie ? Réponds en une phrase courte."
    assert prompt.bounding_box()["y"] < answer.bounding_box()["y"]
    assert answer.locator("strong").inner_text() == "capitale", "rendered as Markdown, not shown raw"
    screenshots(page, artifacts_dir, "bench-run-finished")

    page.click('main nav a[href="/admin/benchmarks"]')
    page.wait_for_url(re.compile(r"/admin/benchmarks$"))
    rows = {r.get_attribute("data-run-id"): text(r) for r in page.locator("[data-history] tbody tr").all()}
    assert re.search(r"Rapide .* this page done 6/6$", rows[str(run_id)]), rows
    assert any(re.search(r"Rapide .* command line done 6/6$", row) for row in rows.values()), rows
    screenshots(page, artifacts_dir, "bench-index")
    assert problems == [], "no script error, nothing the Content Security Policy refused"


def test_a_documents_run_shows_recall_at_5_and_whether_each_answer_cites_its_document(
    page, problems, artifacts_dir: Path
):
    open_benchmarks(page)
    began = time.monotonic()
    run_id = start_run(page, (PLAIN,), suite="documents")
    # The suite's 13 documents indexed first, then 91 scripted answers.
    page.wait_for_selector('h1 [data-state="done"]', timeout=RUN_TIMEOUT_MS * 5)
    print(f"\nthe documents run (13 documents, 91 scripted answers): {time.monotonic() - began:.1f} s")
    assert page.url.endswith(f"/admin/benchmarks/runs/{run_id}")
    recall = text(page.locator('[data-summary] td[data-col="recall"]'))
    found = re.fullmatch(r"(\d\.\d\d) (\d+) of 91", recall)
    assert found and int(found.group(2)) >= 51, recall  # at least the questions sharing words
    # The scripted answer cites nothing: every "cites the right document" check fails, and says why.
    assert text(page.locator('[data-summary] td[data-col="ok"]')) == "0 of 91"
    row = page.locator('[data-results] tr[data-result-prompt="secu-bruit"]')
    assert "The passage that answers was among the 5 found." in text(row)
    assert "The answer cites no passage (no [n] marker)." in text(row)
    assert page.locator('[data-recall="no"]').count() == 91 - int(found.group(2))
    screenshots(page, artifacts_dir, "bench-run-documents")
    assert problems == [], "no script error, nothing the Content Security Policy refused"
