"""Database connection settings and the start-up clean-up of unfinished answers."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from flask_babel import get_locale
from sqlalchemy.engine import Engine

from app.extensions import db
from app.llm.types import Outcome
from config import create_private_file


@sa.event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Foreign keys are off by default in SQLite; WAL lets pages read while an answer is saved.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


def described_by_the_models(object, name, type_, reflected, compare_to) -> bool:
    """Whether Alembic compares this object with the models: not the full-text index, which
    the models cannot describe (SQLite's FTS5 table and its shadow tables, PostgreSQL's
    stored vector column and its index), made by its migrations alone."""
    if type_ == "table" and name and name.startswith("chunk_fts"):
        return False
    if type_ == "column" and name == "search" and getattr(object, "table", None) is not None:
        return object.table.name != "chunk"  # PostgreSQL's stored text-search vector
    return not (type_ == "index" and name == "ix_chunk_search")


def create_sqlite_file(uri: str, instance_path: str) -> None:
    """An SQLite database's file made before SQLite makes it: 0600, not the umask's 0644, since
    it holds every conversation and password hash; its -wal and -shm files take its mode."""
    url = sa.engine.make_url(uri)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    if url.database.startswith("file:"):
        return  # a URI filename: its options are SQLite's to read
    path = Path(url.database)
    path = path if path.is_absolute() else Path(instance_path) / path  # as Flask-SQLAlchemy reads it
    path.parent.mkdir(parents=True, exist_ok=True)
    create_private_file(path)


def sweep_unfinished_answers() -> int:
    """Mark answers left 'generating' by a dead process as interrupted; return how many.

    Run at start-up, before any generation can begin, so no live answer is touched.
    """
    from app.models import Message

    result = db.session.execute(
        sa.update(Message)
        .where(Message.state == Outcome.GENERATING.value)
        .values(state=Outcome.INTERRUPTED.value)
    )
    db.session.commit()
    return result.rowcount


def unfinished_answers() -> int:
    """How many answers are stored as still being written (shutdown waits for none)."""
    from app.models import Message

    return db.session.scalar(
        sa.select(sa.func.count()).select_from(Message).where(Message.state == Outcome.GENERATING.value)
    )


def end_transaction() -> None:
    """No transaction held while the model works (minutes, maybe): on PostgreSQL it would sit
    "idle in transaction", holding its locks. The page's language is settled first: the stream's
    messages need it, and it would read the account again."""
    get_locale()
    db.session.commit()
