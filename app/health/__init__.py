"""`/healthz`: whether this server can answer, for a monitor that has no account.

200 "ok" while the database answers and at least one engine is reachable, else 503. Nothing
more: anyone may ask, so the engines, versions and errors stay in `/api/v1/health`, behind a key.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint

from app.extensions import db
from app.llm import services as llm

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


def _database_answers() -> bool:
    try:
        db.session.execute(sa.text("SELECT 1"))
        db.session.commit()
    except sa.exc.SQLAlchemyError:
        log.warning("healthz: the database does not answer", exc_info=True)
        db.session.rollback()
        return False
    return True


def _an_engine_answers() -> bool:
    return any(status.reachable for status in llm().catalogue.statuses())


@bp.get("/healthz")
def liveness():
    """For monitors and load balancers: "ok", or 503 "unavailable"."""
    alive = _database_answers() and _an_engine_answers()
    body, status = ("ok", 200) if alive else ("unavailable", 503)
    return body, status, {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}
