"""Fixtures: an app on a fresh migrated database, a client, an `auth` helper, a scripted engine."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa

from app import create_app
from app.admin.services import load_preferences
from app.extensions import db
from app.llm import LLMServices
from app.llm.catalogue import Catalogue
from app.llm.scheduler import Scheduler
from app.llm.types import Outcome
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


# The database: SQLite, a file per test; or PostgreSQL when TEST_DATABASE_URL names a server
# (postgresql+psycopg://..., as `scripts/postgres` starts one): then every test gets a database
# of its own, copied from one migrated once per run (CREATE DATABASE ... TEMPLATE, a few ms).
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
ON_POSTGRES = TEST_DATABASE_URL.startswith("postgresql")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "database: uses the app's database (run on PostgreSQL too)")
    config.addinivalue_line("markers", "sqlite_only(reason): checks SQLite itself; skipped on PostgreSQL")


def pytest_collection_modifyitems(config, items) -> None:
    """Marks `database` every test on the `database_url` fixture (through `app` most often):
    `-m database` selects them for the PostgreSQL pass. Skips on PostgreSQL the tests that check
    SQLite itself."""
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.database)
        if not ON_POSTGRES:
            continue
        marker = item.get_closest_marker("sqlite_only")
        reason = marker and (marker.args or ("checks SQLite itself",))[0]
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {reason}"))


class PostgresDatabases:
    """Databases made and dropped on the server TEST_DATABASE_URL names."""

    def __init__(self, url: str) -> None:
        self.url = sa.engine.make_url(url)
        self.admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        self.prefix = f"causerie_test_{os.getpid()}"
        self.count = 0
        self._template: str | None = None

    def create(self, template: str | None = None) -> tuple[str, str]:
        """A new database, empty or a copy of `template`: (its URL, its name)."""
        self.count += 1
        name = f"{self.prefix}_{self.count}"
        with self.admin.connect() as connection:
            connection.exec_driver_sql(
                f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
            )
        return self.url.set(database=name).render_as_string(hide_password=False), name

    def drop(self, name: str) -> None:
        with self.admin.connect() as connection:  # FORCE: ends what a test's threads left open
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def migrated(self) -> tuple[str, str]:
        """A new database at the newest revision: a copy of one migrated on first use."""
        if self._template is None:
            url, name = self.create()

            class Config(TestConfig):
                SQLALCHEMY_DATABASE_URI = url

            app = create_app(Config, llm_services=_services(ScriptedEngine()))
            with app.app_context():
                flask_migrate.upgrade()
                db.engine.dispose()  # a template must have no connection while it is copied
            self._template = name
        return self.create(template=self._template)

    def close(self) -> None:
        if self._template:
            self.drop(self._template)
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres():
    """The PostgreSQL server of TEST_DATABASE_URL; the test is skipped without one."""
    if not ON_POSTGRES:
        pytest.skip("TEST_DATABASE_URL names no PostgreSQL server (scripts/postgres starts one)")
    databases = PostgresDatabases(TEST_DATABASE_URL)
    yield databases
    databases.close()


def _services(engine: ScriptedEngine) -> LLMServices:
    catalogue = Catalogue([engine], default_model="tiny", preferences=load_preferences)
    return LLMServices(catalogue, Scheduler(catalogue))


@pytest.fixture
def database_url(request, tmp_path: Path):
    """A database of this test's own: a SQLite file (empty until migrated), or on PostgreSQL a
    copy of one migrated once (migrating it again changes nothing)."""
    if not ON_POSTGRES:
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    postgres = request.getfixturevalue("postgres")
    url, name = postgres.migrated()
    yield url
    postgres.drop(name)


@pytest.fixture
def app(database_url: str, tmp_path: Path, engine: ScriptedEngine):
    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = database_url
        MODELS_DIR = tmp_path / "models"
        DOCUMENTS_DIR = tmp_path / "documents"

    app = create_app(Config, llm_services=_services(engine))
    with app.app_context():
        flask_migrate.upgrade()  # the schema comes from the migrations, as in production
    yield app
    # A document still being embedded would take the cores from the tests after this one.
    app.extensions["documents"].close()
    if ON_POSTGRES:  # its connections closed before its database is dropped
        _let_answers_end(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _let_answers_end(app, wait: float = 10.0) -> None:
    """Stop the answers a test left running and wait (a little) for their last save: dropping
    the database under a job still saving killed its connection ("server closed the connection
    unexpectedly" in the teardown of the IDOR sweep, whose answers outlast it by design)."""
    answers = app.extensions.get("answers")
    if answers is None:
        return
    answers.cancel_all(Outcome.INTERRUPTED)
    deadline = time.monotonic() + wait
    while answers.unsaved() and time.monotonic() < deadline:
        time.sleep(0.05)


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
