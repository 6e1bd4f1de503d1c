"""`/healthz` for monitors (issue 16, item 21): open to anyone, "ok" or 503 "unavailable",
and not a word more — the engines' details stay behind an API key in `/api/v1/health`."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.llm.types import EngineStatus


def test_healthz_answers_ok_to_a_visitor_without_an_account(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "ok" and response.mimetype == "text/plain"


def test_healthz_answers_503_when_every_engine_fails_and_names_none(client, engine, monkeypatch):
    monkeypatch.setattr(
        engine, "status", lambda: EngineStatus(engine.name, False, detail="refused by 10.1.2.3:11434")
    )
    response = client.get("/healthz")
    assert response.status_code == 503 and response.get_data(as_text=True) == "unavailable"


@pytest.mark.sqlite_only("breaks the SQLite file under the server")
def test_healthz_answers_503_when_the_database_fails(app, client, tmp_path):
    assert client.get("/healthz").status_code == 200
    with app.app_context():
        db.engine.dispose()  # the next connection opens the broken file
    for written_ahead in tmp_path.glob("test.sqlite3-*"):  # the WAL would hold every page still
        written_ahead.unlink()
    (tmp_path / "test.sqlite3").write_bytes(b"not a database " * 1000)
    response = client.get("/healthz")
    assert response.status_code == 503 and response.get_data(as_text=True) == "unavailable"


def test_the_detailed_health_still_needs_an_api_key(client):
    assert client.get("/api/v1/health").status_code == 401


def test_healthz_does_not_run_a_failing_llama_server_on_every_request(app, client, tmp_path, monkeypatch):
    """A llama-server whose `--version` hangs (or cannot start): the failure is kept a while, so
    anonymous /healthz calls cannot make the server start one process each."""
    from app.llm.engines import llamaserver
    from app.llm.engines.llamaserver import LlamaServerEngine

    runs = tmp_path / "runs"
    binary = tmp_path / "llama-server"
    binary.write_text(f"#!/bin/sh\necho run >> {runs}\nexec sleep 30\n")
    binary.chmod(0o755)
    monkeypatch.setattr(llamaserver, "VERSION_TIMEOUT", 0.5)  # the hang ends quickly in a test
    broken = LlamaServerEngine(tmp_path / "models", binary, tmp_path / "run")
    monkeypatch.setattr(app.extensions["llm"].catalogue, "engines", [broken])

    answers = [client.get("/healthz").status_code for _ in range(2)]

    assert answers == [503, 503] and runs.read_text().splitlines() == ["run"]
