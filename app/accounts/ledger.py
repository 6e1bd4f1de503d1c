"""The tokens of each person's day in this process, counted as answers stream (app.accounts.quotas
cuts an answer when its author's reach their limit)."""

from __future__ import annotations

import threading
from datetime import datetime

import sqlalchemy as sa

from app.extensions import db
from app.models import QuotaUse


class Ledger:
    """The tokens of each person's day in this process: those of their answers under way, as
    they stream, and those of their ended answers (read once from the database, then added to
    as answers end), so that checking at every token costs no query.

    An ending answer's row is written outside the lock (a thread counting a new answer may hold
    SQLite's write lock while it waits for this one); until it is, the answer is "settling":
    counted from here, left out of what the database says, so that it counts once whenever
    the day is read."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._live: dict[int, list] = {}  # QuotaUse id -> [user_id, day start, tokens]
        self._settling: dict[int, tuple[int, datetime, int]] = {}  # id -> (user_id, day start, tokens)
        self._ended: dict[tuple[int, datetime], int] = {}  # (user_id, day start) -> tokens

    def spent(self, user_id: int, day: datetime) -> int:
        """Tokens of the person's day (the caller holds the lock, and loaded the day)."""
        live = sum(t for u, d, t in self._live.values() if u == user_id and d == day)
        return self._ended.get((user_id, day), 0) + live

    def load(self, user_id: int, day: datetime) -> None:
        """Read the day's ended answers' tokens once (the caller holds the lock)."""
        self.load_all([user_id], day)

    def load_all(self, user_ids: list[int], day: datetime) -> None:
        """Read these people's ended answers' tokens of the day, those not read yet, in one query
        (a page listing everyone's use); the caller holds the lock."""
        missing = [user_id for user_id in dict.fromkeys(user_ids) if (user_id, day) not in self._ended]
        if not missing:
            return
        for key in [key for key in self._ended if key[1] < day]:  # the days gone
            del self._ended[key]
        settling = {i: (u, t) for i, (u, d, t) in self._settling.items() if u in missing and d == day}
        query = (
            sa.select(QuotaUse.user_id, sa.func.coalesce(sa.func.sum(QuotaUse.tokens), 0))
            .where(QuotaUse.user_id.in_(missing), QuotaUse.started_at >= day, QuotaUse.ended.is_(True))
            .group_by(QuotaUse.user_id)
        )
        if settling:
            query = query.where(QuotaUse.id.not_in(list(settling)))
        ended = dict(db.session.execute(query).all())
        for user_id in missing:
            still_settling = sum(t for u, t in settling.values() if u == user_id)
            self._ended[(user_id, day)] = int(ended.get(user_id) or 0) + still_settling

    def begin(self, use_id: int, user_id: int, day: datetime) -> None:
        with self.lock:
            self._live[use_id] = [user_id, day, 0]

    def add(self, use_id: int, tokens: int, limit: int | None) -> int | None:
        """Count tokens of an answer under way: what is left of the person's `limit` after them
        (None: no limit); below 0 when the limit was reached before them (by another answer of
        theirs): they are not counted, the answer does not show them."""
        with self.lock:
            live = self._live.get(use_id)
            if live is None:
                return None
            spent = self.spent(live[0], live[1])
            if limit is not None and spent >= limit:
                return limit - spent - tokens
            live[2] += tokens
            return None if limit is None else limit - spent - tokens

    def counted(self, use_id: int) -> int:
        with self.lock:
            live = self._live.get(use_id)
            return live[2] if live else 0

    def end(self, use_id: int, tokens: int) -> None:
        """The answer ended with `tokens`: moved to its day's ended tokens, written to its row."""
        with self.lock:
            live = self._live.pop(use_id, None)
            if live is not None:
                self._settling[use_id] = (live[0], live[1], tokens)
                if (live[0], live[1]) in self._ended:
                    self._ended[(live[0], live[1])] += tokens
        try:
            db.session.execute(
                sa.update(QuotaUse).where(QuotaUse.id == use_id).values(tokens=tokens, ended=True)
            )
            db.session.commit()
        finally:
            with self.lock:
                self._settling.pop(use_id, None)

    def forget(self, use_id: int) -> None:
        with self.lock:
            self._live.pop(use_id, None)

    def forget_person(self, user_id: int) -> None:
        """An account erased: its days' tokens go with it (the database may give its id to the
        next account made, which would start its day with them)."""
        with self.lock:
            for key in [key for key in self._ended if key[0] == user_id]:
                del self._ended[key]
