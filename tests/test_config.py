"""The configuration read from the environment at start: a number mistyped in a variable stops
the server with a message naming the variable, not only the value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("LDAP_TIMEOUT_SECONDS", "5s", "LDAP_TIMEOUT_SECONDS must be a number, not '5s'"),
        ("OIDC_TIMEOUT_SECONDS", "dix", "OIDC_TIMEOUT_SECONDS must be a number, not 'dix'"),
        ("DIRECTORY_RECHECK_MINUTES", "15m", "DIRECTORY_RECHECK_MINUTES must be a whole number, not '15m'"),
        ("MAX_ANSWERS_PER_USER", "2.5", "MAX_ANSWERS_PER_USER must be a whole number, not '2.5'"),
    ],
)
def test_a_mistyped_number_stops_the_start_naming_its_variable(variable, value, said):
    started = subprocess.run(
        [sys.executable, "-c", "import config"],
        cwd=ROOT,
        env={**os.environ, variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert said in started.stderr
