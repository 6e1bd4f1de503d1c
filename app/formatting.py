"""Numbers, durations, sizes and dates as the reader's language writes them ("3,3 jetons/s" in
French, "3.3 tokens/s" in English), through Babel: one helper for every page and chart, so no
template writes a decimal point of its own. `static/js/numbers.js` is its twin in the browser."""

from __future__ import annotations

from datetime import datetime

from babel.dates import format_skeleton
from flask import Flask
from flask_babel import format_datetime, format_decimal, format_percent, get_locale, to_user_timezone
from flask_babel import gettext as _

MISSING = "—"  # a figure not measured


def decimal(value: float | None, digits: int = 1) -> str:
    """`value` with exactly `digits` decimals and the language's separators."""
    if value is None:
        return MISSING
    return format_decimal(value, format="#,##0." + "0" * digits if digits else "#,##0")


def seconds(value: float | None, digits: int = 2) -> str:
    """A duration: "0,28 s"; a minute or more as "2 min 05 s"."""
    if value is None:
        return MISSING
    if value >= 60:
        return _("%(minutes)s min %(seconds)s s", minutes=int(value // 60), seconds=f"{int(value % 60):02d}")
    return _("%(seconds)s s", seconds=decimal(value, digits))


def speed(value: float | None) -> str:
    """Tokens per second, one decimal: "3,3 jetons/s"."""
    return MISSING if value is None else _("%(speed)s tokens/s", speed=decimal(value, 1))


def percent(value: float | None) -> str:
    """A share given in percent (0–100), as the language writes it: "33 %" or "33%"."""
    return MISSING if value is None else format_percent(value / 100)


def gigabytes(value: float | None, digits: int = 2) -> str:
    """A size in bytes, in GB."""
    return MISSING if value is None else _("%(size)s GB", size=decimal(value / 1e9, digits))


def moment(value: datetime | None) -> str:
    """A date and time, short, in the language's order ("07/12/2026 14:05")."""
    return MISSING if value is None else format_datetime(value, "short")


def day(value: datetime) -> str:
    """The day of a moment, short: "7 déc." or "Dec 7"."""
    return format_skeleton("MMMd", to_user_timezone(value), locale=get_locale())


def tick(value: datetime, with_day: bool) -> str:
    """A chart axis's time: "07:30", or "7 déc. 07:30" when the axis crosses days."""
    hour = format_skeleton("Hm", to_user_timezone(value), locale=get_locale())
    return f"{day(value)} {hour}" if with_day else hour


FILTERS = {
    "decimal": decimal,
    "seconds": seconds,
    "speed": speed,
    "percent": percent,
    "gigabytes": gigabytes,
    "moment": moment,
}


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(FILTERS)
