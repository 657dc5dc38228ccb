"""The state database's tables and their migrations, and how a state file is opened (`open_state_db`) or checked
before it is trusted (`check_state_db`).

Opening goes through `core/sqlite_db.py`: WAL, private files, and a file that is not a sound state DB of ours
(damaged, or a sound SQLite file whose schema is someone else's: `verify_schema` finds a table or column missing) set
aside as `state.db.corrupt-<UTC time>` with a fresh state in its place. A state DB from a newer version is refused,
never set aside: a newer program may still want it.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from core.sqlite_db import SqliteDb, connect_read_only, verify_migratable, verify_schema

SCHEMA_VERSION: Final = 5
STATE_DB_WHAT: Final = "a tradingd state database"


class StateStoreError(Exception):
    """The state database cannot be used as it is (e.g. it was written by a newer version)."""


@dataclass(frozen=True, slots=True)
class _AddColumn:
    """`ALTER TABLE ... ADD COLUMN`, which SQLite cannot make idempotent (no IF NOT EXISTS): skipped when present."""

    table: str
    column: str
    definition: str

    def apply(self, conn: sqlite3.Connection) -> None:
        present = {row[0] for row in conn.execute("SELECT name FROM pragma_table_info(?)", (self.table,))}
        if self.column not in present:
            conn.execute(f"ALTER TABLE {self.table} ADD COLUMN {self.column} {self.definition}")


# _MIGRATIONS[i] takes the schema from user_version i to i + 1. Every statement is idempotent (IF NOT EXISTS, or an
# `_AddColumn`), so a migration interrupted between its DDL and its version bump can simply run again.
_MIGRATIONS: Final[tuple[tuple[str | _AddColumn, ...], ...]] = (
    (
        """CREATE TABLE IF NOT EXISTS orders (
            client_order_id TEXT PRIMARY KEY,
            broker_order_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            status TEXT NOT NULL,
            qty TEXT,
            notional TEXT,
            filled_qty TEXT NOT NULL,
            filled_avg_price TEXT,
            submitted_at TEXT,
            updated_at TEXT,
            reason TEXT NOT NULL,
            strategy TEXT NOT NULL,
            tier TEXT,
            signal_bar_ts TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS orders_status ON orders (status)",
        """CREATE TABLE IF NOT EXISTS fills (
            execution_id TEXT PRIMARY KEY,
            client_order_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            qty TEXT NOT NULL,
            price TEXT NOT NULL,
            ts TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS fills_ts ON fills (ts)",
        """CREATE TABLE IF NOT EXISTS positions (
            symbol TEXT PRIMARY KEY,
            qty TEXT NOT NULL,
            avg_entry_price TEXT NOT NULL,
            market_price TEXT NOT NULL
        )""",
        # write_seq orders the marks by when they were written: each mark stores max(previous peak, equity), so the
        # most recently written row always holds the all-time peak, read with one indexed lookup.
        """CREATE TABLE IF NOT EXISTS equity_marks (
            session TEXT PRIMARY KEY,
            start_equity TEXT NOT NULL,
            last_equity TEXT NOT NULL,
            peak_equity TEXT NOT NULL,
            write_seq INTEGER NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS equity_marks_write_seq ON equity_marks (write_seq)",
        # Message ids restart with the process, so rows are keyed by their own sequence number.
        """CREATE TABLE IF NOT EXISTS journal (
            seq INTEGER PRIMARY KEY,
            msg_id INTEGER NOT NULL,
            type TEXT NOT NULL,
            ts_event TEXT NOT NULL,
            correlation_id TEXT NOT NULL,
            payload TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS journal_type ON journal (type)",
        "CREATE TABLE IF NOT EXISTS flags (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    # 1 → 2: the journal is append-only and read by sequence; an index on type cost ~10% of a replay's time in page
    # writes for a count that `status` and tests can afford to scan.
    ("DROP INDEX IF EXISTS journal_type",),
    # 2 → 3: protective stops. Every order stored before was a day market order, which the defaults say.
    (
        _AddColumn("orders", "order_type", "TEXT NOT NULL DEFAULT 'market'"),
        _AddColumn("orders", "time_in_force", "TEXT NOT NULL DEFAULT 'day'"),
        _AddColumn("orders", "stop_price", "TEXT"),
        _AddColumn("orders", "trail_percent", "TEXT"),
    ),
    # 3 → 4: the trailing stops' high-water marks (core/store/high_water.py).
    (
        """CREATE TABLE IF NOT EXISTS high_water_marks (
            symbol TEXT PRIMARY KEY,
            opened_by TEXT NOT NULL,
            price TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
    ),
    # 4 → 5: why an exit sold (core/exit_reasons.py), decided at staging; NULL on older rows and on entries.
    (_AddColumn("orders", "exit_reason", "TEXT"),),
)


def open_state_db(path: Path, *, utc_now: Callable[[], datetime]) -> SqliteDb:
    """Open (creating or migrating) the state DB at `path`; `utc_now` names a set-aside file."""
    return SqliteDb(path, schema=_migrate, kind="state_db", what=STATE_DB_WHAT, utc_now=utc_now)


def open_state_db_read_only(path: Path) -> SqliteDb:
    """The state DB at `path` for reading only (it must exist): no schema applied, nothing set aside."""
    return SqliteDb(path, schema=_migrate, kind="state_db", what=STATE_DB_WHAT, read_only=True)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check_state_db(path: Path) -> None:
    """Raise `StateStoreError` with the reason unless `path` is a sound state DB this program can open.

    For a file the daemon did not just open itself (a backup about to be restored): the full `integrity_check`
    (quick_check skips the index-to-table checks), the schema version, every table and column that version of ours
    has, and that our migrations bring it to every table and column this program uses (a backup written by an
    older version is sound: the next open migrates it). Read-only: the file is never changed (the migrations are
    tried on an in-memory copy), and nothing is set aside.
    """
    if not path.is_file():
        raise StateStoreError("no such file" if not path.exists() else "not a regular file")
    try:
        conn = connect_read_only(path)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchall()
            if result != [("ok",)]:
                raise StateStoreError("integrity check failed: " + "; ".join(str(r[0]) for r in result[:5]))
            version = schema_version(conn)
            if version > SCHEMA_VERSION:
                raise StateStoreError(f"schema version {version} is newer than this program's {SCHEMA_VERSION}")
            if version < 1:
                raise StateStoreError(f"not {STATE_DB_WHAT}: schema version {version}")
            verify_schema(conn, _SCHEMA_AT[version], STATE_DB_WHAT)
            verify_migratable(conn, _migrate, STATE_DB_WHAT)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StateStoreError(str(exc)) from None


def _migrate(conn: sqlite3.Connection, target_version: int = SCHEMA_VERSION) -> None:
    """The schema `SqliteDb` applies when it opens the file (and tries on an in-memory copy of a file's tables);
    with `target_version`, the schema as that version had it."""
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise StateStoreError(
            f"state database schema version {version} is newer than this program's {SCHEMA_VERSION}; "
            "upgrade tradingd or point DATA_DIR elsewhere"
        )
    for target in range(version + 1, target_version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _MIGRATIONS[target - 1]:
                if isinstance(statement, _AddColumn):
                    statement.apply(conn)
                else:
                    conn.execute(statement)
            # user_version lives in the database header and is transactional: DDL and version bump commit together.
            conn.execute(f"PRAGMA user_version = {target:d}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


# The schema of each version (a stable object per version: `verify_schema` caches what each one makes).
_SCHEMA_AT: Final = {v: functools.partial(_migrate, target_version=v) for v in range(1, SCHEMA_VERSION + 1)}
