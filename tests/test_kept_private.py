"""What the server keeps stays with it (issue 16, item 21): conversations in JSON are never
cached by a browser or a proxy, and the database and secret key files are readable by the
server's own user only, from the instant they exist."""

from __future__ import annotations

import os
import stat

import flask_migrate
import pytest

import config
from app import create_app
from config import TestConfig
from tests.conftest import sse_events

JSON = {"Accept": "application/json"}
STREAM = {"Accept": "text/event-stream"}


def test_a_conversations_messages_in_json_are_never_cached(signed_in):
    conversation_id = signed_in.post("/conversations", json={}, headers=JSON).json["id"]
    answer = signed_in.post(
        f"/conversations/{conversation_id}/messages", json={"content": "Mon salaire ?"}, headers=STREAM
    )
    assert sse_events(answer.get_data(as_text=True))[-1][0] == "done"
    response = signed_in.get(f"/conversations/{conversation_id}/messages", headers=JSON)
    assert "Mon salaire ?" in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"


@pytest.fixture
def usual_umask():
    """The umask most systems start services with: files readable by everyone unless asked."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def others_may_read(path) -> bool:
    return bool(stat.S_IMODE(path.stat().st_mode) & 0o077)


@pytest.mark.sqlite_only("the SQLite database's own file")
def test_the_sqlite_database_file_is_created_readable_by_its_owner_only(tmp_path, usual_umask):
    path = tmp_path / "causerie.sqlite3"

    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{path}"

    with create_app(Config).app_context():
        flask_migrate.upgrade()
    assert path.exists() and not others_may_read(path)


def test_the_secret_key_file_is_created_readable_by_its_owner_only(tmp_path, usual_umask, monkeypatch):
    # Never readable by others, not even between its writing and a chmod after it.
    monkeypatch.setattr(os, "chmod", lambda *args, **kwargs: None)
    monkeypatch.setattr(type(tmp_path), "chmod", lambda *args, **kwargs: None)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    key = config._secret_key(tmp_path)
    key_file = tmp_path / "secret_key"
    assert len(key) == 64 and not others_may_read(key_file)
    assert config._secret_key(tmp_path) == key  # made once, read back at the next start
