"""How many threads, connections and database connections the server keeps, from one setting.

`MAX_STREAMS` answers may wait or stream at once. Every open stream holds a waitress thread for
its whole length; page loads get threads of their own on top, and every thread may hold a
database connection, so a full house of streams never makes a page wait.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url

PAGE_THREADS = 8  # threads kept for page loads beside the streams


def waitress_settings(max_streams: int) -> dict:
    return {
        "threads": max_streams + PAGE_THREADS,
        "connection_limit": max_streams * 4 + 50,
        # Lets the app learn that a client went away while its answer streams.
        "channel_request_lookahead": 5,
        # Slow and idle connections are looked at every second (app/connections.py closes them),
        # and poll() rather than select(), which fails past 1,024 open sockets.
        "cleanup_interval": 1,
        "asyncore_use_poll": True,
    }


def database_pool(max_streams: int, database_url: str) -> dict:
    """SQLAlchemy pool options: a connection for every server thread (none for in-memory SQLite,
    which keeps its single connection)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return {}
    return {"pool_size": max_streams + PAGE_THREADS, "max_overflow": PAGE_THREADS, "pool_timeout": 10}
