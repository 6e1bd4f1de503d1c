"""How many SQL statements a page costs: a list page whose count grows with its rows asks the
database once per row (N+1)."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db


def statements_of(app, client, url: str, method: str = "get") -> tuple[int, str]:
    """The number of SQL statements one request to `url` sends (a GET, or `method`), and the
    page."""
    seen = []
    with app.app_context():
        engine = db.engine

    def count(_connection, _cursor, statement, *_rest) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        page = getattr(client, method)(url).get_data(as_text=True)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return len(seen), page
