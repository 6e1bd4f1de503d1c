"""One setting sizes the server: streams never take the threads or connections pages need."""

from app.extensions import db
from app.sizing import PAGE_THREADS, waitress_settings


def test_open_streams_leave_threads_for_page_loads():
    settings = waitress_settings(max_streams=32)
    assert settings["threads"] == 32 + PAGE_THREADS
    assert settings["connection_limit"] > settings["threads"]


def test_every_server_thread_can_hold_a_database_connection(app):
    threads = waitress_settings(app.config["MAX_STREAMS"])["threads"]
    with app.app_context():
        assert db.engine.pool.size() == threads
        assert db.session.execute(db.text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(db.text("PRAGMA busy_timeout")).scalar() == 5000
