"""Upgrading a database that is in use keeps everything in it.

SQLite cannot alter a column in place: Alembic rebuilds the table (copy, drop, rename). With
foreign keys on, dropping `user` would delete every conversation and message through their
ON DELETE CASCADE. The migrations run with them off.
"""

from __future__ import annotations

import sqlite3

import flask_migrate

from app import create_app
from config import TestConfig

BEFORE_ACCOUNTS_CHANGED = "f60501b6bc20"  # the revision before `user` was altered


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
