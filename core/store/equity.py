"""Daily equity marks: the `equity_marks` table, per session the start-of-day equity and the latest, and the
all-time peak, which the daily-loss and drawdown limits are measured from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Final

from core.sqlite_db import SqliteDb

_UPSERT_EQUITY: Final = """
    INSERT INTO equity_marks (session, start_equity, last_equity, peak_equity, write_seq) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (session) DO UPDATE SET
        last_equity = excluded.last_equity, peak_equity = excluded.peak_equity, write_seq = excluded.write_seq
"""
_SELECT_EQUITY: Final = "SELECT session, start_equity, last_equity, peak_equity FROM equity_marks"


@dataclass(frozen=True, slots=True)
class EquityMark:
    """Equity for one trading session: at its first mark, at its latest mark, and the all-time peak so far."""

    session: date
    start_equity: Decimal
    last_equity: Decimal
    peak_equity: Decimal


class EquityMarks:
    """The `equity_marks` table, on its owner's connection and transaction."""

    def __init__(self, db: SqliteDb) -> None:
        self._db = db
        self._conn = db.conn

    def mark(self, session: date, equity: Decimal) -> EquityMark:
        """Record equity for a session: the first mark of a session is its start-of-day equity and is never
        overwritten; every mark updates the session's last equity and the all-time peak."""
        key = session.isoformat()
        with self._db.transaction():
            existing = self._conn.execute("SELECT start_equity FROM equity_marks WHERE session = ?", (key,)).fetchone()
            latest = self._conn.execute(
                "SELECT peak_equity, write_seq FROM equity_marks ORDER BY write_seq DESC LIMIT 1"
            ).fetchone()
            start = equity if existing is None else Decimal(existing[0])
            peak = equity if latest is None else max(Decimal(latest[0]), equity)
            seq = 1 if latest is None else int(latest[1]) + 1
            self._conn.execute(_UPSERT_EQUITY, (key, str(start), str(equity), str(peak), seq))
        return EquityMark(session=session, start_equity=start, last_equity=equity, peak_equity=peak)

    def get(self, session: date) -> EquityMark | None:
        row = self._conn.execute(f"{_SELECT_EQUITY} WHERE session = ?", (session.isoformat(),)).fetchone()
        return None if row is None else _equity_mark(row)

    def latest(self) -> EquityMark | None:
        """The mark of the most recent session."""
        row = self._conn.execute(f"{_SELECT_EQUITY} ORDER BY session DESC LIMIT 1").fetchone()
        return None if row is None else _equity_mark(row)

    def between(self, start: date | None = None, end: date | None = None) -> list[EquityMark]:
        """The marks of the sessions from `start` to `end` (inclusive; None: unbounded), oldest first."""
        rows = self._conn.execute(
            f"{_SELECT_EQUITY} WHERE session >= ? AND session <= ? ORDER BY session",
            ("" if start is None else start.isoformat(), "9999-12-31" if end is None else end.isoformat()),
        )
        return [_equity_mark(row) for row in rows]

    def peak(self) -> Decimal | None:
        """The all-time peak: held by the most recently written mark, whatever its session."""
        row = self._conn.execute("SELECT peak_equity FROM equity_marks ORDER BY write_seq DESC LIMIT 1").fetchone()
        return None if row is None else Decimal(row[0])


def _equity_mark(row: tuple[Any, ...]) -> EquityMark:
    session, start, last, peak = row
    return EquityMark(
        session=date.fromisoformat(session),
        start_equity=Decimal(start),
        last_equity=Decimal(last),
        peak_equity=Decimal(peak),
    )
