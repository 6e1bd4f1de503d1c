"""Fixtures: an app on a fresh migrated database, a client, an `auth` helper, a scripted engine."""

from __future__ import annotations

import json
from pathlib import Path

import flask_migrate
import pytest

from app import create_app
from app.admin.services import load_preferences
from app.llm import LLMServices
from app.llm.catalogue import Catalogue
from app.llm.scheduler import Scheduler
from config import TestConfig
from tests.fakes import ScriptedEngine
from tests.ollama_server import OllamaStandIn

PASSWORD = "a long enough password"


@pytest.fixture(scope="session")
def ollama_host():
    """One Ollama stand-in for the whole run (its embedded model loads once)."""
    with OllamaStandIn() as server:
        yield server


@pytest.fixture
def standin(ollama_host) -> OllamaStandIn:
    """The stand-in with its defaults back: both models, no failure switched on, nothing loaded."""
    ollama_host.reset()
    return ollama_host


@pytest.fixture
def engine() -> ScriptedEngine:
    return ScriptedEngine()


@pytest.fixture
def app(tmp_path: Path, engine: ScriptedEngine):
    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'test.sqlite3'}"
        MODELS_DIR = tmp_path / "models"

    catalogue = Catalogue([engine], default_model="tiny", preferences=load_preferences)
    app = create_app(Config, llm_services=LLMServices(catalogue, Scheduler(catalogue)))
    with app.app_context():
        flask_migrate.upgrade()  # the schema comes from the migrations, as in production
    yield app


@pytest.fixture
def client(app):
    return app.test_client()


class AuthActions:
    def __init__(self, client) -> None:
        self.client = client

    def register(self, username: str = "alice", password: str = PASSWORD):
        return self.client.post(
            "/register", data={"username": username, "password": password, "confirm": password}
        )

    def login(self, username: str = "alice", password: str = PASSWORD):
        return self.client.post("/login", data={"username": username, "password": password})

    def logout(self):
        return self.client.post("/logout")


@pytest.fixture
def auth(client) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def signed_in(client, auth):
    """A client signed in as the first account (hence the admin)."""
    auth.register()
    return client


def sse_events(body: str) -> list[tuple[str, dict]]:
    """The (event, data) pairs of an event-stream body, comments left out."""
    events = []
    for block in body.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        name = next((line[6:].strip() for line in lines if line.startswith("event:")), "message")
        data = "\n".join(line[5:].lstrip() for line in lines if line.startswith("data:"))
        events.append((name, json.loads(data)))
    return events
