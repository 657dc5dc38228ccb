"""The named string flags that outlive the process (kill switch, breakers, recovery, run token, last scan date,
intraday scores): the `flags` table, a `core/flags.py::FlagStore`."""

from __future__ import annotations

from core.sqlite_db import SqliteDb


class Flags:
    """The `flags` table, on its owner's connection."""

    def __init__(self, db: SqliteDb) -> None:
        self._conn = db.conn

    def get_flag(self, name: str) -> str | None:
        row = self._conn.execute("SELECT value FROM flags WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_flag(self, name: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO flags (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def clear_flag(self, name: str) -> None:
        self._conn.execute("DELETE FROM flags WHERE name = ?", (name,))

    def with_prefix(self, prefix: str) -> dict[str, str]:
        # substr, not LIKE: a prefix holding `_` or `%` means itself.
        rows = self._conn.execute(
            "SELECT name, value FROM flags WHERE substr(name, 1, ?) = ? ORDER BY name", (len(prefix), prefix)
        ).fetchall()
        return dict(rows)

    def as_dict(self) -> dict[str, str]:
        """Every flag, by name (for `tradingd status`)."""
        return dict(self._conn.execute("SELECT name, value FROM flags ORDER BY name").fetchall())
