"""The dashboard's charts, read from the SVG the server draws: an axis fitted to the answers, a
y axis with its grid, memory over time, one colour per model on every chart and page, and the
machine's last minutes. How they look in the browser: tests/browser/test_dashboard_in_browser.py."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

from app.extensions import db
from app.metrics.charts import PALETTE
from app.models import Generation, utcnow
from app.settings.brand import contrast_with_white
from tests.test_bench_pages import BenchEngine, start, wait_for_end

SVG = ""  # inline in HTML: no namespace
DARK_PAGE = "#020617"  # slate-950, the dark theme's background


@pytest.fixture
def engine() -> BenchEngine:
    return BenchEngine()


def answer(model: str, hours_ago: float, first: float = 0.5, memory: int = 300_000_000) -> Generation:
    return Generation(
        engine="llama.cpp",
        model=model,
        outcome="complete",
        first_token_seconds=first,
        total_seconds=first * 4,
        tokens_per_second=20.0,
        process_cpu_percent_mean=80.0,
        process_rss_peak_bytes=memory,
        concurrent=1,
        created_at=utcnow() - timedelta(hours=hours_ago),
    )


@pytest.fixture
def last_day(app, signed_in):
    """A day of answers from two models, in a week's view."""
    with app.app_context():
        db.session.add_all(
            [answer("tiny", hours, first=0.2 + hours / 50) for hours in (20, 14, 8, 3, 1)]
            + [answer("other", hours, first=1.1, memory=900_000_000) for hours in (18, 6, 2)]
        )
        db.session.commit()
    return signed_in


def charts(page: str, width: int = 560) -> dict[str, ET.Element]:
    """The page's wide drawings (or narrow ones), by their title."""
    found = {}
    for markup in re.findall(r"<svg viewBox=.*?</svg>", page, re.S):
        svg = ET.fromstring(markup)
        if svg.get("data-width") == str(width):
            found[svg.findtext(f"{SVG}title")] = svg
    return found


def test_the_time_chart_spans_its_width_for_a_day_of_answers_in_a_weeks_view(last_day):
    page = last_day.get("/admin/dashboard?period=7d").get_data(as_text=True)
    chart = charts(page)["Median time to first token"]
    width = float(chart.get("viewBox").split()[2])
    xs = sorted(float(point.get("cx")) for point in chart.iter(f"{SVG}circle"))
    assert xs[0] < 0.15 * width and xs[-1] > 0.9 * width, (xs, width)


@pytest.mark.parametrize("width", [560, 320])
def test_the_y_axis_has_three_labels_or_more_with_grid_lines(last_day, width):
    page = last_day.get("/admin/dashboard").get_data(as_text=True)
    chart = charts(page, width)["Median time to first token"]
    grid = [line for line in chart.iter(f"{SVG}line") if line.get("class") == "chart-grid"]
    y_labels = [t.text for t in chart.iter(f"{SVG}text") if t.get("data-axis") == "y"]
    assert len(grid) >= 3 and len(y_labels) >= 3 and len(y_labels) == len(grid), (y_labels, len(grid))
    assert len({line.get("y1") for line in grid}) == len(grid)


def test_a_memory_chart_shows_each_models_peak_over_time_in_gigabytes(last_day):
    page = last_day.get("/admin/dashboard").get_data(as_text=True)
    chart = charts(page)["Memory of the process doing the work, peak"]
    circles = list(chart.iter(f"{SVG}circle"))
    points = {
        model: [c.findtext(f"{SVG}title") for c in circles if c.get("data-model") == model]
        for model in ("tiny", "other")
    }
    assert len(points["tiny"]) == 5 and all(title.endswith("0.30 GB") for title in points["tiny"]), points
    assert len(points["other"]) == 3 and all(title.endswith("0.90 GB") for title in points["other"]), points


def colours_of(page: str) -> dict[str, set[str]]:
    """Every colour each model is drawn in, on every chart and legend of the page."""
    found: dict[str, set[str]] = {}
    for element, model in re.findall(r"<(?:rect|polyline|circle)\b([^>]*)data-model=\"([^\"]+)\"", page):
        colour = re.search(r'(?:fill|stroke)="(#[0-9a-f]{6})"', element)
        found.setdefault(model, set()).add(colour.group(1))
    return found


def test_a_model_keeps_its_colour_on_every_chart_and_on_the_benchmarks_page(app, last_day):
    dashboard = colours_of(last_day.get("/admin/dashboard").get_data(as_text=True))
    assert len(dashboard["tiny"]) == 1 and len(dashboard["other"]) == 1, dashboard
    assert dashboard["tiny"] != dashboard["other"]
    start(last_day, models=["tiny", "other"], thinking="off")
    wait_for_end(app)
    benchmarks = colours_of(last_day.get("/admin/benchmarks").get_data(as_text=True))
    assert benchmarks["tiny"] == dashboard["tiny"] and benchmarks["other"] == dashboard["other"], (
        benchmarks,
        dashboard,
    )


def test_every_model_colour_stands_out_on_the_light_and_the_dark_page():
    for colour in PALETTE:
        dark = contrast_with_white(DARK_PAGE) / contrast_with_white(colour)
        assert contrast_with_white(colour) >= 3 and dark >= 3, (colour, contrast_with_white(colour), dark)


def test_the_server_now_draws_the_machine_over_the_last_minutes(signed_in):
    signed_in.get("/admin/dashboard")
    signed_in.get("/admin/live")
    drawn = signed_in.get("/admin/live").json["chart"]
    chart = ET.fromstring(re.findall(r"<svg viewBox=.*?</svg>", drawn, re.S)[0])
    lines = {line.get("data-model"): line.get("points").split() for line in chart.iter(f"{SVG}polyline")}
    assert set(lines) == {"CPU", "Memory"} and all(len(points) >= 3 for points in lines.values()), lines
