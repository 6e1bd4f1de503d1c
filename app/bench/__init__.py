"""Benchmarks: suites of prompts with checks, runs through the scheduler, results, fit."""

from flask import Blueprint, Flask

bp = Blueprint("bench", __name__)


def init_app(app: Flask) -> None:
    from app.bench.runs import BenchmarkRunner

    app.extensions["bench"] = BenchmarkRunner(app)


from app.bench import routes  # noqa: E402,F401
