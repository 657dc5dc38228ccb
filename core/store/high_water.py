"""The trailing stops' high-water marks: the `high_water_marks` table, one row per held symbol.

`STOP_MODE=trailing` trails the stop below the highest price seen since the position was opened. The mark must
outlive a restart (a daemon that forgot it would trail from a lower price), so each rise is written here; the row
names the entry that opened the position (`opened_by`), so a new position of the same symbol starts afresh.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.sqlite_db import SqliteDb
from core.store.codec import parse_time, time_text


@dataclass(frozen=True, slots=True)
class HighWaterMark:
    symbol: str
    opened_by: str  # the client order id of the entry that opened the position
    price: Decimal
    updated_at: datetime


class HighWaterMarks:
    """The `high_water_marks` table, on its owner's connection."""

    def __init__(self, db: SqliteDb) -> None:
        self._conn = db.conn

    def save(self, mark: HighWaterMark) -> None:
        self._conn.execute(
            "INSERT INTO high_water_marks (symbol, opened_by, price, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (symbol) DO UPDATE SET opened_by = excluded.opened_by, price = excluded.price,"
            " updated_at = excluded.updated_at",
            (mark.symbol, mark.opened_by, str(mark.price), time_text(mark.updated_at)),
        )

    def load(self) -> dict[str, HighWaterMark]:
        rows = self._conn.execute("SELECT symbol, opened_by, price, updated_at FROM high_water_marks ORDER BY symbol")
        return {
            symbol: HighWaterMark(symbol, opened_by, Decimal(price), _required_time(updated_at))
            for symbol, opened_by, price, updated_at in rows
        }

    def delete(self, symbols: Iterable[str]) -> None:
        self._conn.executemany("DELETE FROM high_water_marks WHERE symbol = ?", [(s,) for s in symbols])


def _required_time(text: str) -> datetime:
    value = parse_time(text)
    if value is None:  # the column is NOT NULL
        raise ValueError("high_water_marks.updated_at is empty")
    return value
