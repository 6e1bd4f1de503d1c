"""Upgrading a database that is in use keeps everything in it.

SQLite cannot alter a column in place: Alembic rebuilds the table (copy, drop, rename). With
foreign keys on, dropping `user` would delete every conversation and message through their
ON DELETE CASCADE. The migrations run with them off.

The same upgrade with data runs on PostgreSQL too (TEST_DATABASE_URL), as does the check that
the migrations build what the models describe (`flask db check`).
"""

from __future__ import annotations

import json
import sqlite3

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app import create_app
from app.database import described_by_the_models
from app.extensions import db
from config import TestConfig
from tests.conftest import ON_POSTGRES

BEFORE_ACCOUNTS_CHANGED = "f60501b6bc20"  # the revision before `user` was altered


@pytest.mark.sqlite_only("SQLite's table rebuild with its foreign keys off")
def test_upgrading_a_database_in_use_keeps_every_account_conversation_and_message(tmp_path):
    path = tmp_path / "in-use.sqlite3"

    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{path}"

    app = create_app(Config)
    with app.app_context():
        flask_migrate.upgrade(revision=BEFORE_ACCOUNTS_CHANGED)
    with sqlite3.connect(path) as database:
        database.execute(
            "INSERT INTO user (id, username, password_hash, is_admin, created_at) "
            "VALUES (1, 'alice', 'x', 1, '2026-01-01')"
        )
        database.execute(
            "INSERT INTO conversation (id, user_id, title, model, system_prompt, created_at, updated_at) "
            "VALUES (1, 1, 'Bonjour', 'tiny', '', '2026-01-01', '2026-01-01')"
        )
        database.execute(
            "INSERT INTO message (id, conversation_id, role, content, thinking, state, model, error, stats, "
            "created_at) VALUES (1, 1, 'user', 'Bonjour ?', '', 'complete', 'tiny', '', '{}', '2026-01-01')"
        )
    with app.app_context():
        flask_migrate.upgrade()
    with sqlite3.connect(path) as database:
        counts = [
            database.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("user", "conversation", "message")
        ]
        token = database.execute("SELECT session_token FROM user").fetchone()[0]
        foreign_keys = database.execute("PRAGMA foreign_key_check").fetchall()
    assert counts == [1, 1, 1] and len(token) == 32 and foreign_keys == []


@pytest.fixture
def empty_database_url(tmp_path, request) -> str:
    """An empty database: a SQLite file, or on PostgreSQL (TEST_DATABASE_URL) a new database."""
    if not ON_POSTGRES:
        return f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    postgres = request.getfixturevalue("postgres")
    url, name = postgres.create()
    request.addfinalizer(lambda: postgres.drop(name))
    return url


@pytest.mark.database
def test_upgrading_keeps_the_data_and_chains_each_conversations_messages(empty_database_url):
    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = empty_database_url

    app = create_app(Config)
    with app.app_context():
        flask_migrate.upgrade(revision=BEFORE_ACCOUNTS_CHANGED)
        with db.engine.begin() as connection:
            connection.execute(
                sa.text(
                    'INSERT INTO "user" (id, username, password_hash, is_admin, created_at) '
                    "VALUES (1, 'alice', 'x', true, '2026-01-01'), (2, 'bob', 'x', false, '2026-01-01')"
                )
            )
            connection.execute(
                sa.text(
                    "INSERT INTO conversation (id, user_id, title, model, system_prompt, created_at, "
                    "updated_at) VALUES (1, 1, 'Bonjour', 'tiny', '', '2026-01-01', '2026-01-01'), "
                    "(2, 2, 'Salut', 'tiny', '', '2026-01-01', '2026-01-01')"
                )
            )
            connection.execute(
                sa.text(
                    "INSERT INTO message (id, conversation_id, role, content, thinking, state, model, "
                    "error, stats, created_at) VALUES "
                    "(1, 1, 'user', 'Bonjour ?', '', 'complete', 'tiny', '', '{}', '2026-01-01'), "
                    "(2, 2, 'user', 'Salut ?', '', 'complete', 'tiny', '', '{}', '2026-01-01'), "
                    "(3, 1, 'assistant', 'Bonjour !', '', 'complete', 'tiny', '', '{}', '2026-01-01'), "
                    "(4, 1, 'user', 'Ça va ?', '', 'complete', 'tiny', '', '{}', '2026-01-01')"
                )
            )
        flask_migrate.upgrade()
        with db.engine.connect() as connection:
            tokens = connection.execute(sa.text('SELECT session_token FROM "user"')).scalars().all()
            parents = dict(connection.execute(sa.text("SELECT id, parent_id FROM message")).all())
            flags = connection.execute(
                sa.text('SELECT disabled, pending, language, theme FROM "user" ORDER BY id')
            ).all()
            options = connection.execute(sa.text("SELECT options FROM conversation")).scalars().all()
        db.engine.dispose()
    assert len(tokens) == 2 and len({*tokens}) == 2 and all(len(t) == 32 for t in tokens)
    assert parents == {1: None, 2: None, 3: 1, 4: 3}  # each message follows the one before it
    assert [tuple(f) for f in flags] == [(False, False, "", "system")] * 2
    assert [o if isinstance(o, dict) else json.loads(o) for o in options] == [{}, {}]


@pytest.mark.database
def test_the_migrations_match_the_models(database_url):
    """What `flask db check` checks: the migrated schema has everything the models describe."""

    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = database_url

    app = create_app(Config)
    with app.app_context():
        flask_migrate.upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"include_object": described_by_the_models})
            differences = compare_metadata(context, db.metadata)
        db.engine.dispose()
    assert differences == []


@pytest.mark.database
def test_upgrading_keeps_each_models_state_and_only_models_new_since_wait_for_the_admin(empty_database_url):
    """Before display names, a model without settings was offered: the models the database knows
    stay offered, a disabled one stays disabled; a model new since the upgrade waits for the admin."""
    from app.admin.services import load_preferences
    from app.llm import LLMServices
    from app.llm.catalogue import Catalogue
    from app.llm.scheduler import Scheduler
    from tests.fakes import ScriptedEngine

    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = empty_database_url
        NEW_MODELS_ENABLED = False

    engine = ScriptedEngine(model_ids=("tiny", "used", "switched-off"))
    catalogue = Catalogue([engine], "tiny", load_preferences)
    app = create_app(Config, llm_services=LLMServices(catalogue, Scheduler(catalogue)))
    with app.app_context():
        _before_model_names_with_alice()
        with db.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO conversation (id, user_id, title, model, system_prompt, created_at, "
                    "updated_at, options, pinned) "
                    "VALUES (1, 1, 'Bonjour', 'used', '', '2026-01-01', '2026-01-01', '{}', false)"
                )
            )
            connection.execute(
                sa.text(
                    "INSERT INTO model_setting (model_id, enabled, system_prompt, updated_at) "
                    "VALUES ('switched-off', false, '', '2026-01-01')"
                )
            )
        flask_migrate.upgrade()
        catalogue.entries()  # the first listing since the upgrade
        engine.model_ids += ("never-seen",)
        offered = {entry.id: entry.offered for entry in catalogue.entries()}
        db.engine.dispose()
    assert offered == {"tiny": True, "used": True, "switched-off": False, "never-seen": False}


@pytest.mark.database
def test_upgrading_keeps_offering_a_model_an_ollama_host_lists_that_nobody_used(empty_database_url, standin):
    """Before display names, every model a host listed was offered, used or not: after the
    upgrade it still is, and stays so once listed (its settings stored); a model the host gets
    after that first listing is new and waits for the admin. The migration cannot ask the host."""
    from dataclasses import replace

    from app.admin.services import load_preferences
    from app.llm import LLMServices
    from app.llm.catalogue import Catalogue
    from app.llm.engines.ollama import OllamaEngine
    from app.llm.scheduler import Scheduler

    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = empty_database_url
        NEW_MODELS_ENABLED = False

    host = OllamaEngine(standin.url, list_ttl=0)  # every listing asks the host
    catalogue = Catalogue([host], "tiny", load_preferences)
    app = create_app(Config, llm_services=LLMServices(catalogue, Scheduler(catalogue)))
    with app.app_context():
        _before_model_names_with_alice()
        flask_migrate.upgrade()
        first_listing = [entry.id for entry in catalogue.offered()]
        db.session.remove()
        standin.models["qwen3:0.6b"] = replace(standin.models["deepseek-r1:1.5b"])  # the host gets a model
        later = {entry.id: entry.offered for entry in catalogue.entries()}
        db.session.remove()
        db.engine.dispose()
    assert first_listing == ["smollm2:135m", "deepseek-r1:1.5b"]
    assert later == {"smollm2:135m": True, "deepseek-r1:1.5b": True, "qwen3:0.6b": False}


@pytest.mark.database
def test_upgrading_keeps_offering_the_models_of_a_host_that_was_down_at_the_first_listing(
    empty_database_url, standin
):
    """Only a listing every host answered settles which models stay offered: a host down then
    keeps its models offered when it comes back."""
    from dataclasses import replace

    from app.admin.services import load_preferences
    from app.llm import LLMServices
    from app.llm.catalogue import Catalogue
    from app.llm.engines.ollama import OllamaEngine
    from app.llm.scheduler import Scheduler
    from tests.ollama_server import OllamaStandIn

    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = empty_database_url
        NEW_MODELS_ENABLED = False

    second = OllamaStandIn().start()
    second.models = {"mistral:7b": replace(second.models["deepseek-r1:1.5b"])}
    second.stop()  # down during the first listing
    hosts = [OllamaEngine(h.url, list_ttl=0, retry_seconds=0, connect_timeout=1.0) for h in (standin, second)]
    catalogue = Catalogue(hosts, "tiny", load_preferences)
    app = create_app(Config, llm_services=LLMServices(catalogue, Scheduler(catalogue)))
    with app.app_context():
        _before_model_names_with_alice()
        flask_migrate.upgrade()
        catalogue.entries()  # the first listing: the second host does not answer
        db.session.remove()
        second.start(second.port)
        try:
            catalogue.entries()  # every host answers
            db.session.remove()
            offered = {entry.id: entry.offered for entry in catalogue.entries()}
        finally:
            second.stop()
            db.session.remove()
            db.engine.dispose()
    assert offered == {"smollm2:135m": True, "deepseek-r1:1.5b": True, "mistral:7b": True}


@pytest.mark.database
def test_upgrading_with_names_that_fold_alike_keeps_every_account_each_with_a_unique_key(empty_database_url):
    """ "alice", "Alice" and "ａｌｉｃｅ" (fullwidth) from before names were folded: all kept; the
    oldest keeps the folded name as its key, the others a key no name can fold to."""

    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = empty_database_url

    app = create_app(Config)
    with app.app_context():
        flask_migrate.upgrade(revision="c16a00000002")  # the revision before the key
        with db.engine.begin() as connection:
            connection.execute(
                sa.text(
                    'INSERT INTO "user" (id, username, password_hash, is_admin, created_at, session_token) '
                    "VALUES (1, 'alice', 'x', true, '2026-01-01', 'a'), "
                    "(2, 'Alice', 'x', false, '2026-01-01', 'b'), "
                    "(3, 'ａｌｉｃｅ', 'x', false, '2026-01-01', 'c'), "
                    "(4, 'bob', 'x', false, '2026-01-01', 'd')"
                )
            )
        flask_migrate.upgrade()
        with db.engine.connect() as connection:
            keys = dict(connection.execute(sa.text('SELECT username, username_key FROM "user"')).all())
        db.engine.dispose()
    assert keys == {"alice": "alice", "Alice": "alice#2", "ａｌｉｃｅ": "alice#3", "bob": "bob"}


def _before_model_names_with_alice() -> None:
    """The database at the revision before model display names (c16a00000002), Alice in it: a
    server in use, as its upgrade finds it. Inside the app's context."""
    flask_migrate.upgrade(revision="c16a00000001")
    with db.engine.begin() as connection:
        connection.execute(
            sa.text(
                'INSERT INTO "user" (id, username, password_hash, is_admin, created_at, '
                "session_token, disabled, pending, language, theme) "
                "VALUES (1, 'alice', 'x', true, '2026-01-01', 't', false, false, '', 'system')"
            )
        )
