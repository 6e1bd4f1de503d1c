"""The machine now, and over the last minutes for the dashboard's small chart: each reading an
admin's page takes is kept (no thread samples when nobody looks), the older ones dropped."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

import psutil
from flask_babel import gettext as _
from markupsafe import Markup

from app.metrics import charts
from app.models import utcnow

KEPT = timedelta(minutes=10)
COLOURS = {"cpu": charts.PALETTE[0], "memory": charts.PALETTE[1]}


@dataclass(frozen=True)
class Reading:
    at: datetime
    cpu_percent: float
    memory_used: int
    memory_total: int

    @property
    def memory_percent(self) -> float:
        return 100 * self.memory_used / self.memory_total


_readings: deque[Reading] = deque()
_lock = threading.Lock()


def read() -> Reading:
    """The machine's CPU (over a tenth of a second) and memory now; kept for `recent()`."""
    memory = psutil.virtual_memory()
    reading = Reading(utcnow(), psutil.cpu_percent(interval=0.1), memory.used, memory.total)
    with _lock:
        _readings.append(reading)
        while _readings and _readings[0].at < reading.at - KEPT:
            _readings.popleft()
    return reading


def recent() -> list[Reading]:
    """The readings of the last minutes, oldest first."""
    with _lock:
        return list(_readings)


def chart(readings: list[Reading]) -> Markup:
    """CPU and memory, in % of the machine, over the minutes kept (filling from the right)."""
    cpu, memory, now = _("CPU"), _("Memory"), utcnow()
    colours = {cpu: COLOURS["cpu"], memory: COLOURS["memory"]}
    return charts.line_chart(
        {
            cpu: [(r.at, r.cpu_percent) for r in readings],
            memory: [(r.at, r.memory_percent) for r in readings],
        },
        _("The machine over the last minutes"),
        "%",
        colours,
        top=100,
        height=170,
        span=(now - KEPT, now),
    )
