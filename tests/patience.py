"""How long the tests wait for real work, so that no verdict depends on the machine's speed.

A wait on real work (a real model writing, a server starting, a thread being scheduled) is not
what a test checks: the test checks what the work did. Such waits follow the work's progress
where they can (`tests/browser/pages.py` waits for an answer as long as it keeps moving), and
every fixed limit on them goes through `patience()`, scaled by TEST_TIME_SCALE (default 1) for a
machine slower or busier than the 2 loaded cores these limits were set on (`TEST_TIME_SCALE=3`).

A limit that defines correct behaviour (Stop ends an answer within seconds, a shutdown is
bounded) is asserted with a margin of 3 over what the behaviour promises, the measured value
printed; speed itself is measured in `benchmarks/`, never asserted here.
"""

from __future__ import annotations

import os

TIME_SCALE = max(1.0, float(os.environ.get("TEST_TIME_SCALE", "1") or 1))


def patience(seconds: float) -> float:
    """A wait on real work of `seconds` on the reference machine, scaled for this one."""
    return seconds * TIME_SCALE


def patience_ms(milliseconds: float) -> float:
    """The same in milliseconds, as Playwright takes them."""
    return milliseconds * TIME_SCALE
