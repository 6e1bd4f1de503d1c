"""One setting sizes the server: streams never take the threads or connections pages need."""

import pytest

from app.extensions import db
from app.sizing import PAGE_THREADS, database_pool, waitress_settings


def test_an_in_memory_database_keeps_its_single_connection_however_it_is_written():
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite+pysqlite:///:memory:"):
        assert database_pool(32, url) == {}
    assert database_pool(32, "postgresql://causerie@db/causerie")["pool_size"] == 32 + PAGE_THREADS


@pytest.mark.sqlite_only("checks SQLite's WAL and busy_timeout pragmas")
def test_every_server_thread_can_hold_a_database_connection(app):
    threads = waitress_settings(app.config["MAX_STREAMS"])["threads"]
    with app.app_context():
        assert db.engine.pool.size() == threads
        assert db.session.execute(db.text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(db.text("PRAGMA busy_timeout")).scalar() == 5000
