"""The admin's dashboard as it looks: its charts' words readable (12 px or more where they are
shown, and not grey on black in the dark theme), "the server now" drawn and redrawn, nothing
wider than a phone; screenshots at 1280×800 and 390×844, light and dark. Headless Chromium,
the real server; its answers from the Ollama stand-in's models."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.pages import VIEWPORTS

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

MODELS = ("deepseek-r1:1.5b", "smollm2:135m")  # the stand-in's scripted model and its small real one

# Each visible chart word: its size on the screen and its colour, with the page's background.
CHART_WORDS = """() => {
  const canvas = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
  const parse = (colour) => {  // whatever CSS calls it (oklch…), as the screen's sRGB
    canvas.clearRect(0, 0, 1, 1);
    canvas.fillStyle = colour;
    canvas.fillRect(0, 0, 1, 1);
    return [...canvas.getImageData(0, 0, 1, 1).data.slice(0, 3)];
  };
  const background = parse(getComputedStyle(document.body).backgroundColor);
  return [...document.querySelectorAll("svg[data-chart] text")]
    .filter((text) => text.getBoundingClientRect().width > 0)
    .map((text) => ({
      words: text.textContent,
      pixels: Number(text.getAttribute("font-size")) * text.ownerSVGElement.getScreenCTM().a,
      fill: parse(getComputedStyle(text).fill),
      background,
    }));
}"""


def contrast(one: list[float], two: list[float]) -> float:
    """WCAG's contrast ratio of two sRGB colours (0–255 channels)."""

    def luminance(rgb: list[float]) -> float:
        linear = [c / 255 / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(one), luminance(two)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.fixture(scope="module")
def answered(live_server, admin) -> None:
    """An answer from each of two models, so that the charts have two lines."""
    from benchmarks.client import ChatClient

    client = ChatClient(live_server.base_url)
    assert client.login(*admin).ok
    for model in MODELS:
        answer = client.ask(client.create_conversation(model), "Réponds en un mot : bonjour ?")
        assert answer.text, model


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_the_dashboard_charts_are_readable_in_both_themes_and_fit_the_screen(
    browser, live_server, logged_in_state, answered, artifacts_dir: Path, screen, theme
):
    context = browser.new_context(
        locale="fr-FR",
        base_url=live_server.base_url,
        storage_state=logged_in_state,
        color_scheme=theme,
        **VIEWPORTS[screen],
    )
    try:
        page = context.new_page()
        page.goto("/admin/dashboard?period=24h")
        shown = page.evaluate(
            "() => [...document.querySelectorAll('svg[data-chart]')]"
            ".filter((svg) => svg.getBoundingClientRect().width > 0).map((svg) => svg.ariaLabel)"
        )
        assert len(shown) == len(set(shown)) >= 4, f"one drawing of each chart: {shown}"
        words = page.evaluate(CHART_WORDS)
        assert len(words) > 20, words  # five charts' axes, labels and values, and the machine's
        small = [w for w in words if w["pixels"] < 11.9]
        assert not small, small
        faint = [w for w in words if contrast(w["fill"], w["background"]) < 4.5]
        assert not faint, faint
        width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"the page is wider than the screen: {width}"
        page.screenshot(path=str(artifacts_dir / f"dashboard-{screen}-{theme}.png"), full_page=True)
        live = artifacts_dir / f"dashboard-{screen}-{theme}-now.png"
        page.locator("[data-live]").screenshot(path=str(live))
        page.locator("figure:has(svg[data-chart=line])").first.screenshot(
            path=str(artifacts_dir / f"dashboard-{screen}-{theme}-time-chart.png")
        )
    finally:
        context.close()


def test_the_server_now_chart_is_redrawn_as_the_minutes_pass(logged_in_page):
    page = logged_in_page
    page.goto("/admin/dashboard")
    points = (
        "() => document.querySelector('[data-live-chart] svg polyline')"
        ".getAttribute('points').split(' ').length"
    )
    before = page.evaluate(points)
    page.wait_for_function(f"(before) => ({points})() > before", arg=before, timeout=15_000)


@pytest.fixture(scope="module")
def answered_from_a_document(live_server, admin) -> str:
    """A question asked with a document attached, through the chat's own routes; the model."""
    from benchmarks.client import ChatClient

    client = ChatClient(live_server.base_url)
    assert client.login(*admin).ok
    uploaded = client.session.post(
        client.url("/documents"),
        files={
            "file": ("conges.md", "# Congés\n\nLes congés se posent quatre semaines à l'avance.".encode())
        },
        headers={"X-CSRFToken": client.csrf_token, "Accept": "application/json"},
    )
    assert uploaded.status_code == 201, uploaded.text
    document = uploaded.json()["document"]["id"]
    conversation = client.create_conversation(MODELS[0])
    answer = client.ask(conversation, "Quand poser ses congés ?", (document,))
    assert answer.text and any(e.name == "sources" for e in answer.events), answer.events[-3:]
    return MODELS[0]


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_the_dashboard_shows_what_documents_cost_an_answer_and_fits_the_screen(
    browser, live_server, logged_in_state, answered_from_a_document, artifacts_dir: Path, screen, theme
):
    context = browser.new_context(
        locale="fr-FR",
        base_url=live_server.base_url,
        storage_state=logged_in_state,
        color_scheme=theme,
        **VIEWPORTS[screen],
    )
    try:
        page = context.new_page()
        page.goto("/admin/dashboard?period=24h")
        section = page.locator("[data-documents-panel]")
        row = section.locator(f'[data-documents-costs] tr[data-model-id="{answered_from_a_document}"]')
        assert row.count() == 1 and " s / " in row.locator("[data-first-token-with]").inner_text()
        assert int(section.locator("[data-indexing] [data-documents]").inner_text()) >= 1
        section.locator("summary").click()
        assert section.locator("[data-document-answers] tr[data-generation]").count() >= 1
        width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"the page is wider than the screen: {width}"
        section.screenshot(path=str(artifacts_dir / f"dashboard-documents-{screen}-{theme}.png"))
        page.screenshot(
            path=str(artifacts_dir / f"dashboard-with-documents-{screen}-{theme}.png"), full_page=True
        )
    finally:
        context.close()
