"""The positions the daemon last saw: the `positions` table, replaced as a whole at the end of every iteration."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from core.sqlite_db import SqliteDb
from core.types import Position


class Positions:
    """The `positions` table, on its owner's connection and transaction."""

    def __init__(self, db: SqliteDb) -> None:
        self._db = db
        self._conn = db.conn

    def save(self, positions: Mapping[str, Position]) -> None:
        """Replace every stored position with these."""
        rows = [(p.symbol, str(p.qty), str(p.avg_entry_price), str(p.market_price)) for p in positions.values()]
        with self._db.transaction():
            self._conn.execute("DELETE FROM positions")
            self._conn.executemany(
                "INSERT INTO positions (symbol, qty, avg_entry_price, market_price) VALUES (?, ?, ?, ?)", rows
            )

    def load(self) -> dict[str, Position]:
        rows = self._conn.execute("SELECT symbol, qty, avg_entry_price, market_price FROM positions ORDER BY symbol")
        return {
            symbol: Position(symbol=symbol, qty=Decimal(qty), avg_entry_price=Decimal(avg), market_price=Decimal(px))
            for symbol, qty, avg, px in rows
        }

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM positions").fetchone()[0])
