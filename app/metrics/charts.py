"""Charts drawn on the server as SVG: no script, nothing fetched, readable without JavaScript."""

from __future__ import annotations

from datetime import datetime

from markupsafe import Markup, escape

PALETTE = ("#4f46e5", "#059669", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#be185d", "#65a30d")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 220, 48, 24, 12


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _number(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def line_chart(
    series: dict[str, list[tuple[datetime, float]]],
    since: datetime,
    until: datetime,
    title: str,
    unit: str,
    order: list[str],
) -> Markup:
    """One line per model over the period (coloured by its place in `order`, as the legend);
    the y axis from 0 to the highest value."""
    top = max((value for points in series.values() for _, value in points), default=0.0) or 1.0
    span = (until - since).total_seconds() or 1.0

    def x(at: datetime) -> float:
        return LEFT + (WIDTH - LEFT - 8) * (at - since).total_seconds() / span

    def y(value: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - value / top)

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" class="w-full">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{LEFT}" y1="{y(0)}" x2="{WIDTH - 8}" y2="{y(0)}" stroke="#94a3b8"/>',
        f'<text x="{LEFT - 6}" y="{y(top) + 4}" text-anchor="end" font-size="11" fill="#64748b">'
        f"{_number(top)} {escape(unit)}</text>",
        f'<text x="{LEFT - 6}" y="{y(0) + 4}" text-anchor="end" font-size="11" fill="#64748b">0</text>',
        f'<text x="{LEFT}" y="{HEIGHT - 6}" font-size="11" fill="#64748b">{since:%d/%m %H:%M}</text>',
        f'<text x="{WIDTH - 8}" y="{HEIGHT - 6}" text-anchor="end" font-size="11" fill="#64748b">'
        f"{until:%d/%m %H:%M}</text>",
    ]
    for model, points in series.items():
        index = order.index(model) if model in order else len(order)
        path = " ".join(f"{x(at):.1f},{y(value):.1f}" for at, value in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour(index)}" stroke-width="2"/>')
        for at, value in points:
            parts.append(
                f'<circle cx="{x(at):.1f}" cy="{y(value):.1f}" r="3" fill="{colour(index)}">'
                f"<title>{escape(model)}: {_number(value)} {escape(unit)}</title></circle>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    bars: list[tuple[str, float | None]], title: str, unit: str, labels_above: bool = False
) -> Markup:
    """One horizontal bar per model; a model without the figure gets none. `labels_above`:
    each label on its own line over its bar, for labels too long for the left margin."""
    known = [value for _, value in bars if value is not None]
    top = max(known, default=0.0) or 1.0
    row, label_width = (40, 8) if labels_above else (26, 200)
    offset = 14 if labels_above else 0  # the bar's place below its label
    height = row * len(bars) + 8
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}" class="w-full">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (label, value) in enumerate(bars):
        y = 4 + index * row
        if labels_above:
            parts.append(
                f'<text x="{label_width}" y="{y + 11}" font-size="12" fill="#475569">{escape(label)}</text>'
            )
        else:
            parts.append(
                f'<text x="{label_width - 8}" y="{y + 16}" text-anchor="end" font-size="12" fill="#475569">'
                f"{escape(label)}</text>"
            )
        if value is None:
            parts.append(
                f'<text x="{label_width}" y="{y + offset + 16}" font-size="12" fill="#94a3b8">—</text>'
            )
            continue
        length = (WIDTH - label_width - 90) * value / top
        parts.append(
            f'<rect x="{label_width}" y="{y + offset + 3}" width="{length:.1f}" height="18" '
            f'fill="{colour(index)}"><title>{escape(label)}</title></rect>'
        )
        parts.append(
            f'<text x="{label_width + length + 6:.1f}" y="{y + offset + 16}" font-size="12" fill="#475569">'
            f"{_number(value)} {escape(unit)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
