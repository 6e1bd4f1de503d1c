"""A benchmark through the Ollama engine (the stand-in: real SmolLM2 tokens, a scripted
reasoning model): thinking on and off measured apart, a cold start that unloads the model on
the host, and a judge asked for structured output with Ollama's `format`."""

from __future__ import annotations

import json
from pathlib import Path

import flask_migrate
import pytest

from app import create_app
from app.admin.services import load_preferences
from app.bench.judge import VERDICT_SCHEMA
from app.extensions import db
from app.llm import LLMServices
from app.llm.catalogue import Catalogue
from app.llm.engines.ollama import OllamaEngine
from app.llm.scheduler import Scheduler
from app.models import BenchmarkRun
from config import TestConfig
from tests.conftest import AuthActions
from tests.patience import patience

pytestmark = pytest.mark.model
SMOLLM2, THINKER = "smollm2:135m", "deepseek-r1:1.5b"


@pytest.fixture
def app(tmp_path: Path, standin):
    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'test.sqlite3'}"
        MODELS_DIR = tmp_path / "models"

    engine = OllamaEngine(standin.url, list_ttl=0)
    catalogue = Catalogue([engine], default_model=SMOLLM2, preferences=load_preferences)
    scheduler = Scheduler(catalogue)
    app = create_app(Config, llm_services=LLMServices(catalogue, scheduler))
    with app.app_context():
        flask_migrate.upgrade()
    return app


def test_a_reasoning_model_on_ollama_is_measured_thinking_and_not_and_judged_in_json(app, standin):
    client = app.test_client()
    AuthActions(client).register()  # the first account: the admin
    response = client.post(
        "/admin/benchmarks",
        data={
            "models": [THINKER, SMOLLM2],
            "suite": "rapide",
            "repetitions": "1",
            "start": "cold",
            "thinking": "both",
            "judge": SMOLLM2,
        },
    )
    assert response.status_code == 302
    # Real answers (the stand-in's SmolLM2) take what a busy machine makes them: the results are checked.
    assert app.extensions["bench"].idle.wait(patience(900)), "the benchmark did not end"
    with app.app_context():
        run = db.session.scalars(db.select(BenchmarkRun)).one()
        results = list(run.results)
        assert run.state == "done" and run.steps_done == run.steps_total == 12  # (2 + 1) × 2, judged
        assert [e["engine"] for e in run.machine["engines"]] == [f"ollama@{standin.url.split('//')[1]}"]
        thought = [r for r in results if r.model == THINKER and r.think]
        unthought = [r for r in results if r.model == THINKER and r.think is False]
        assert len(thought) == len(unthought) == 2
        assert all(r.thinking_text and r.thinking_tokens > 0 and r.thinking_seconds > 0 for r in thought)
        assert all(not r.thinking_text and not r.thinking_seconds for r in unthought)
        assert {r.think for r in results if r.model == SMOLLM2} == {None}  # it cannot think
        assert all(r.engine_version == standin_version() for r in results)
        for r in results:
            print(f"{r.model} think={r.think} {r.prompt_id}: judge {r.judge_score} — {r.judge_reply!r}")
        assert all(r.judge_reply for r in results)
        assert all(r.judge_score is not None for r in results if _reads_as_verdict(r.judge_reply))
    chats = standin.bodies("/api/chat")
    judged = [b for b in chats if b.get("format")]
    assert len(judged) == 6 and all(b["format"] == VERDICT_SCHEMA for b in judged)
    unloads = [b for b in standin.bodies("/api/generate") + chats if b.get("keep_alive") == 0]
    # Cold: the model is unloaded before every measured answer but each model's first (which
    # finds it unloaded already): 3 for the thinker's 4 answers, 1 for SmolLM2's 2.
    assert len(unloads) == 4


def standin_version() -> str:
    from tests.ollama_server import VERSION

    return VERSION


def _reads_as_verdict(reply: str) -> bool:
    try:
        verdict = json.loads(reply)
    except ValueError:
        return False
    score = verdict.get("score") if isinstance(verdict, dict) else None
    return isinstance(score, int) and not isinstance(score, bool) and 1 <= score <= 10
