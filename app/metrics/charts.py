"""Charts drawn on the server as SVG: no script, nothing fetched, readable without JavaScript.

Each chart comes in two drawings, a wide one and a narrow one for phones (the page shows the one
that fits), because an SVG's text scales with its width: drawn for the width it is shown at, its
words stay at 12 px or more. Words and grid lines take their colours from app.css classes
(`chart-text`, `chart-grid`), so they are readable in the light and the dark theme; the models'
colours are presentation attributes (the CSP forbids inline styles, not attributes).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from flask_babel import gettext as _
from markupsafe import Markup, escape

from app import formatting

# Mid-tones that stand out (3:1 or more) on both the light page and the dark one.
PALETTE = (
    "#6366f1",  # indigo
    "#0d9488",  # teal
    "#d97706",  # amber
    "#e11d48",  # rose
    "#0284c7",  # sky
    "#9333ea",  # purple
    "#65a30d",  # lime
    "#db2777",  # pink
    "#ea580c",  # orange
    "#78716c",  # stone
)
WIDE, NARROW = 560, 320  # viewBox widths: shown from 576 px up, and below
FONT = 12
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 30, 40


def palette(known: Iterable[str], shown: Iterable[str] = ()) -> dict[str, str]:
    """One colour per model, the same in every chart and on every page: each model of the
    catalogue (`known`) takes the colour its name points to (a CRC, the same on every server and
    after every restart), or the next one free when another model of the catalogue has it; the
    models only found in the records (`shown`) come after them, the same way."""
    colours: dict[str, str] = {}
    known = sorted(set(known))
    for model in known + sorted(set(shown) - set(known)):
        start = zlib.crc32(model.encode()) % len(PALETTE)
        free = [PALETTE[(start + step) % len(PALETTE)] for step in range(len(PALETTE))]
        colours[model] = next((c for c in free if c not in colours.values()), free[0])
    return colours


def ticks(top: float, count: int = 4) -> list[float]:
    """0 and round steps (1, 2, 2.5 or 5 times a power of ten) up to `top` or just above it:
    at least three values."""
    top = top if top > 0 else 1.0
    power = 10 ** math.floor(math.log10(top / count))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power * count >= top)
    return [step * i for i in range(math.ceil(top / step - 1e-9) + 1)]


def _digits(step: float) -> int:
    """The decimals a tick needs to show its step exactly (0.25 → 2)."""
    return next((d for d in range(4) if abs(round(step, d) - step) < 1e-9), 4)


def _text(x: float, y: float, words: str, anchor: str = "start", axis: str = "") -> str:
    marked = f' data-axis="{axis}"' if axis else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{FONT}" fill="#334155" '
        f'class="chart-text"{marked}>{escape(words)}</text>'
    )


def _svg(width: int, height: int, title: str, kind: str, body: list[str]) -> str:
    shown = "chart-wide" if width == WIDE else "chart-narrow"
    return (
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'class="w-full {shown}" data-chart="{kind}" data-width="{width}">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _nothing(title: str) -> Markup:
    """In place of a chart with nothing to draw (a remote engine's memory is not measured)."""
    words = _("Not measured in this period.")  # outside the f-string, where Babel finds it
    return Markup(
        f'<p class="chart-empty" role="img" aria-label="{escape(title)}" data-chart="none">'
        f"{escape(words)}</p>"
    )


def line_chart(
    series: dict[str, list[tuple[datetime, float]]],
    title: str,
    unit: str,
    colours: dict[str, str],
    top: float | None = None,
    height: int = 240,
    span: tuple[datetime, datetime] | None = None,
) -> Markup:
    """One line per model, over the time its points span (not the whole period: a day of
    answers in a week's view fills the width); the y axis from 0 to a round value above the
    highest, with its grid. `unit` names the values, over the axis; `span`: a fixed time axis."""
    values = [value for points in series.values() for _at, value in points]
    moments = [at for points in series.values() for at, _value in points]
    if not moments:
        return _nothing(title)
    scale = ticks(top or max(values, default=0.0))
    start, end = span or (min(moments), max(moments))
    if end - start < timedelta(minutes=1):  # one moment: in the middle
        start, end = start - timedelta(minutes=30), end + timedelta(minutes=30)
    drawings = [
        _line_drawing(width, height, series, title, unit, colours, scale, start, end)
        for width in (WIDE, NARROW)
    ]
    return Markup("".join(drawings))


def _line_drawing(width, height, series, title, unit, colours, scale, start, end) -> str:
    span = (end - start).total_seconds()
    plot_width, plot_height = width - LEFT - RIGHT, height - TOP - BOTTOM

    def x(at: datetime) -> float:
        return LEFT + plot_width * (at - start).total_seconds() / span

    def y(value: float) -> float:
        return TOP + plot_height * (1 - value / scale[-1])

    digits = _digits(scale[1] - scale[0])
    body = [_text(LEFT - 6, 12, unit, "end")]
    for value in scale:
        body.append(
            f'<line x1="{LEFT}" y1="{y(value):.1f}" x2="{width - RIGHT}" y2="{y(value):.1f}" '
            f'stroke="#e2e8f0" class="chart-grid"/>'
        )
        body.append(_text(LEFT - 6, y(value) + 4, formatting.decimal(value, digits), "end", "y"))
    count = 4 if width == WIDE else 2
    with_day = formatting.day(start) != formatting.day(end)
    for index in range(count + 1):
        at = start + (end - start) * index / count
        anchor = "start" if index == 0 else "end" if index == count else "middle"
        body.append(_text(x(at), height - BOTTOM + 18, formatting.tick(at, with_day), anchor, "x"))
    for model, points in series.items():
        colour = colours.get(model, PALETTE[0])
        path = " ".join(f"{x(at):.1f},{y(value):.1f}" for at, value in points)
        body.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5" '
            f'data-model="{escape(model)}"/>'
        )
        for at, value in points:
            body.append(
                f'<circle cx="{x(at):.1f}" cy="{y(value):.1f}" r="3.5" fill="{colour}" '
                f'data-model="{escape(model)}">'
                f"<title>{escape(model)} · {formatting.moment(at)} · "
                f"{formatting.decimal(value, 2)} {escape(unit)}</title></circle>"
            )
    return _svg(width, height, title, "line", body)


def bar_chart(
    bars: list[tuple[str, float | None]],
    title: str,
    show: Callable[[float], str],
    colours: dict[str, str],
    models: list[str] | None = None,
) -> Markup:
    """One horizontal bar per line, its label above it and its value after it (as `show`
    writes it, from app.formatting), coloured as its model (`models`, one per bar; by default
    the label is the model); no figure, no bar."""
    models = models or [label for label, _value in bars]
    if all(value is None for _label, value in bars):
        return _nothing(title)
    drawings = [_bar_drawing(width, bars, title, show, colours, models) for width in (WIDE, NARROW)]
    return Markup("".join(drawings))


def _bar_drawing(width, bars, title, show, colours, models) -> str:
    known = [value for _, value in bars if value is not None]
    top = max(known, default=0.0) or 1.0
    row, room = 44, width - 8 - 96  # the room left for the value after the longest bar
    body = []
    for index, ((label, value), model) in enumerate(zip(bars, models, strict=True)):
        y = 4 + index * row
        body.append(_text(8, y + 13, label))
        if value is None:
            body.append(_text(8, y + 34, formatting.MISSING))
            continue
        length = max(room * value / top, 1.0)
        body.append(
            f'<rect x="8" y="{y + 19}" width="{length:.1f}" height="18" rx="2" '
            f'fill="{colours.get(model, PALETTE[0])}" data-model="{escape(model)}">'
            f"<title>{escape(label)}</title></rect>"
        )
        body.append(_text(8 + length + 6, y + 33, show(value)))
    return _svg(width, row * len(bars) + 8, title, "bars", body)
