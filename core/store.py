"""The daemon's durable state: one SQLite database (WAL) in DATA_DIR.

What must survive a restart lives here: orders (keyed by client order id, so a restart never places one twice),
fills (keyed by execution id, so a replayed stream is harmless), positions, daily equity marks (start-of-day equity
and the all-time peak that the daily-loss and drawdown limits are measured from), a journal of published events and
a few flags (kill switch, circuit breakers, last scan date).

The daemon writes once per iteration inside `transaction()`; outside a transaction every write commits on its own.
Money and quantities are stored as TEXT so a `Decimal` comes back exactly as it went in; datetimes as fixed-width
ISO-8601 UTC TEXT, so string order is time order. One `StateStore` has one owner: it is not meant to be shared by
concurrent threads. Other processes (`tradingd status`, `tradingd halt`) may open the same file at the same time.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Final, Self

import numpy as np
import orjson

from core.messages import Message
from core.redact import redact
from core.sqlite_db import SqliteDb, connect_read_only, verify_schema, wall_clock_utc
from core.types import BarFrame, BrokerOrder, Fill, OrderSide, OrderStatus, Position, Tier

SCHEMA_VERSION: Final = 2

_OPEN_STATUS_VALUES: Final = tuple(s.value for s in OrderStatus if s.is_open)
_FINAL_STATUS_VALUES: Final = tuple(s.value for s in OrderStatus if not s.is_open)
# Fields of a message that get their own journal columns, so the payload does not repeat them.
_JOURNAL_COLUMNS: Final = frozenset({"id", "ts_event", "correlation_id"})


STATE_DB_WHAT = "a tradingd state database"


class StateStoreError(Exception):
    """The state database cannot be used as it is (e.g. it was written by a newer version)."""


@dataclass(frozen=True, slots=True)
class EquityMark:
    """Equity for one trading session: at its first mark, at its latest mark, and the all-time peak so far."""

    session: date
    start_equity: Decimal
    last_equity: Decimal
    peak_equity: Decimal


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """A stored order with what the daemon knew when it placed it (the broker does not keep these)."""

    order: BrokerOrder
    strategy: str
    tier: Tier | None
    signal_bar_ts: datetime | None


# ----------------------------------------------------------------------------------------------------------------------
# SCHEMA
# ----------------------------------------------------------------------------------------------------------------------

# _MIGRATIONS[i] takes the schema from user_version i to i + 1. Every statement is idempotent (IF NOT EXISTS), so a
# migration interrupted between its DDL and its version bump can simply run again.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
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
)
_ORDER_COLUMNS: Final = (
    "client_order_id, broker_order_id, symbol, side, status, qty, notional, filled_qty, filled_avg_price, "
    "submitted_at, updated_at, reason, strategy, tier, signal_bar_ts"
)
# A final order never changes status again: a late or replayed update cannot reopen a filled/canceled order, and a
# stale terminal update cannot turn a fill into a cancel. What the daemon knew at submit time is kept when a later
# update (e.g. from the broker's stream) does not know it.
_UPSERT_ORDER: Final = f"""
    INSERT INTO orders ({_ORDER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (client_order_id) DO UPDATE SET
        broker_order_id = COALESCE(NULLIF(excluded.broker_order_id, ''), broker_order_id),
        status = excluded.status,
        qty = excluded.qty,
        notional = excluded.notional,
        filled_qty = excluded.filled_qty,
        filled_avg_price = excluded.filled_avg_price,
        submitted_at = COALESCE(excluded.submitted_at, submitted_at),
        updated_at = COALESCE(excluded.updated_at, updated_at),
        reason = excluded.reason,
        strategy = COALESCE(NULLIF(excluded.strategy, ''), strategy),
        tier = COALESCE(excluded.tier, tier),
        signal_bar_ts = COALESCE(excluded.signal_bar_ts, signal_bar_ts)
    WHERE status NOT IN ({", ".join(f"'{s}'" for s in _FINAL_STATUS_VALUES)}) OR excluded.status = status
"""  # noqa: S608 - the interpolated values are our own enum constants, never input
_SELECT_ORDERS: Final = f"SELECT {_ORDER_COLUMNS} FROM orders"  # noqa: S608 - constant column list
_SELECT_OPEN_ORDERS: Final = (
    f"{_SELECT_ORDERS} WHERE status IN ({', '.join('?' * len(_OPEN_STATUS_VALUES))}) ORDER BY rowid"
)
_INSERT_FILL: Final = (
    "INSERT OR IGNORE INTO fills (execution_id, client_order_id, symbol, side, qty, price, ts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_FILLS: Final = "SELECT execution_id, client_order_id, symbol, side, qty, price, ts FROM fills"
_UPSERT_EQUITY: Final = """
    INSERT INTO equity_marks (session, start_equity, last_equity, peak_equity, write_seq) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (session) DO UPDATE SET
        last_equity = excluded.last_equity, peak_equity = excluded.peak_equity, write_seq = excluded.write_seq
"""
_SELECT_EQUITY: Final = "SELECT session, start_equity, last_equity, peak_equity FROM equity_marks"
_INSERT_JOURNAL: Final = "INSERT INTO journal (msg_id, type, ts_event, correlation_id, payload) VALUES (?, ?, ?, ?, ?)"


# ----------------------------------------------------------------------------------------------------------------------
# THE STORE
# ----------------------------------------------------------------------------------------------------------------------


class StateStore:
    """SQLite-backed state of the daemon. Open it, use it, `close()` it (or use it as a context manager).

    Opened through `core/sqlite_db.py`: WAL, private files, and a corrupt or foreign file set aside as
    `state.db.corrupt-<UTC time>` (logged `state_db_corrupt`) with a fresh state in its place. `utc_now` names that
    file (wall time by default).
    """

    def __init__(self, path: Path, *, utc_now: Callable[[], datetime] = wall_clock_utc) -> None:
        self._db = SqliteDb(Path(path), schema=_migrate, kind="state_db", what=STATE_DB_WHAT, utc_now=utc_now)
        self._conn = self._db.conn

    @property
    def path(self) -> Path:
        return self._db.path

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # ------------------------------------------------------------------------------------------------------------------
    # TRANSACTIONS
    # ------------------------------------------------------------------------------------------------------------------

    def transaction(self) -> AbstractContextManager[None]:
        """All writes inside commit together or not at all. Nested use is a savepoint inside the outer transaction."""
        return self._db.transaction()

    @property
    def in_transaction(self) -> bool:
        return self._db.in_transaction

    # ------------------------------------------------------------------------------------------------------------------
    # ORDERS
    # ------------------------------------------------------------------------------------------------------------------

    def upsert_order(
        self,
        order: BrokerOrder,
        *,
        strategy: str = "",
        tier: str | None = None,
        signal_bar_ts: datetime | None = None,
    ) -> bool:
        """Insert or update an order. Returns False when the update was refused because the order is already final."""
        cur = self._conn.execute(
            _UPSERT_ORDER,
            (
                order.client_order_id,
                order.broker_order_id,
                order.symbol,
                order.side.value,
                order.status.value,
                _dec_or_none(order.qty),
                _dec_or_none(order.notional),
                str(order.filled_qty),
                _dec_or_none(order.filled_avg_price),
                _ts_or_none(order.submitted_at),
                _ts_or_none(order.updated_at),
                # A broker's refusal text can echo the request (keys included): scrubbed before it is stored.
                redact(order.reason) if order.reason else order.reason,
                strategy,
                None if tier is None else Tier(tier).value,
                _ts_or_none(signal_bar_ts),
            ),
        )
        return cur.rowcount > 0

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        record = self.order_record(client_order_id)
        return None if record is None else record.order

    def order_record(self, client_order_id: str) -> OrderRecord | None:
        row = self._conn.execute(f"{_SELECT_ORDERS} WHERE client_order_id = ?", (client_order_id,)).fetchone()
        return None if row is None else _order_record(row)

    def open_orders(self) -> list[BrokerOrder]:
        return [_order_record(row).order for row in self._conn.execute(_SELECT_OPEN_ORDERS, _OPEN_STATUS_VALUES)]

    def pending_orders(self) -> list[BrokerOrder]:
        """Orders written ahead of their broker call whose outcome was never stored (oldest first)."""
        rows = self._conn.execute(
            f"{_SELECT_ORDERS} WHERE status = ? ORDER BY rowid", (OrderStatus.PENDING_SUBMIT.value,)
        )
        return [_order_record(row).order for row in rows]

    def discard_pending(self, client_order_id: str) -> bool:
        """Forget a write-ahead row the broker certainly never took (a definite refusal): the id may be used again.
        Only a `pending_submit` row is ever deleted; returns whether one was."""
        cur = self._conn.execute(
            "DELETE FROM orders WHERE client_order_id = ? AND status = ?",
            (client_order_id, OrderStatus.PENDING_SUBMIT.value),
        )
        return cur.rowcount > 0

    def all_orders(self) -> list[BrokerOrder]:
        return [_order_record(row).order for row in self._conn.execute(f"{_SELECT_ORDERS} ORDER BY rowid")]

    # ------------------------------------------------------------------------------------------------------------------
    # FILLS
    # ------------------------------------------------------------------------------------------------------------------

    def record_fill(self, fill: Fill) -> bool:
        """Record one execution. Returns False if this execution id was already recorded (nothing changes)."""
        return self._conn.execute(_INSERT_FILL, _fill_row(fill)).rowcount > 0

    def record_fills(self, fills: Sequence[Fill]) -> int:
        """Record many executions in one statement; returns how many were new."""
        if not fills:
            return 0
        return self._conn.executemany(_INSERT_FILL, [_fill_row(f) for f in fills]).rowcount

    def fills(self, since: datetime | None = None) -> list[Fill]:
        """Fills in time order; with `since`, only those at or after it."""
        if since is None:
            rows = self._conn.execute(f"{_SELECT_FILLS} ORDER BY ts, rowid")
        else:
            rows = self._conn.execute(f"{_SELECT_FILLS} WHERE ts >= ? ORDER BY ts, rowid", (_ts(since),))
        return [_fill(row) for row in rows]

    def last_fill_ts(self) -> datetime | None:
        """The latest fill's time (timestamps are fixed-width ISO text, so MAX orders them), without reading all."""
        return _parse_ts(self._conn.execute("SELECT MAX(ts) FROM fills").fetchone()[0])

    # ------------------------------------------------------------------------------------------------------------------
    # POSITIONS
    # ------------------------------------------------------------------------------------------------------------------

    def save_positions(self, positions: Mapping[str, Position]) -> None:
        """Replace every stored position with these."""
        rows = [(p.symbol, str(p.qty), str(p.avg_entry_price), str(p.market_price)) for p in positions.values()]
        with self.transaction():
            self._conn.execute("DELETE FROM positions")
            self._conn.executemany(
                "INSERT INTO positions (symbol, qty, avg_entry_price, market_price) VALUES (?, ?, ?, ?)", rows
            )

    def load_positions(self) -> dict[str, Position]:
        rows = self._conn.execute("SELECT symbol, qty, avg_entry_price, market_price FROM positions ORDER BY symbol")
        return {
            symbol: Position(symbol=symbol, qty=Decimal(qty), avg_entry_price=Decimal(avg), market_price=Decimal(px))
            for symbol, qty, avg, px in rows
        }

    # ------------------------------------------------------------------------------------------------------------------
    # EQUITY MARKS
    # ------------------------------------------------------------------------------------------------------------------

    def mark_equity(self, session: date, equity: Decimal) -> EquityMark:
        """Record equity for a session: the first mark of a session is its start-of-day equity and is never
        overwritten; every mark updates the session's last equity and the all-time peak."""
        key = session.isoformat()
        with self.transaction():
            existing = self._conn.execute("SELECT start_equity FROM equity_marks WHERE session = ?", (key,)).fetchone()
            latest = self._conn.execute(
                "SELECT peak_equity, write_seq FROM equity_marks ORDER BY write_seq DESC LIMIT 1"
            ).fetchone()
            start = equity if existing is None else Decimal(existing[0])
            peak = equity if latest is None else max(Decimal(latest[0]), equity)
            seq = 1 if latest is None else int(latest[1]) + 1
            self._conn.execute(_UPSERT_EQUITY, (key, str(start), str(equity), str(peak), seq))
        return EquityMark(session=session, start_equity=start, last_equity=equity, peak_equity=peak)

    def equity_mark(self, session: date) -> EquityMark | None:
        row = self._conn.execute(f"{_SELECT_EQUITY} WHERE session = ?", (session.isoformat(),)).fetchone()
        return None if row is None else _equity_mark(row)

    def latest_equity_mark(self) -> EquityMark | None:
        """The mark of the most recent session."""
        row = self._conn.execute(f"{_SELECT_EQUITY} ORDER BY session DESC LIMIT 1").fetchone()
        return None if row is None else _equity_mark(row)

    def peak_equity(self) -> Decimal | None:
        row = self._conn.execute("SELECT peak_equity FROM equity_marks ORDER BY write_seq DESC LIMIT 1").fetchone()
        return None if row is None else Decimal(row[0])

    def equity_curve(self) -> list[tuple[date, Decimal]]:
        """(session, last equity of that session), oldest first."""
        rows = self._conn.execute("SELECT session, last_equity FROM equity_marks ORDER BY session")
        return [(date.fromisoformat(s), Decimal(e)) for s, e in rows]

    # ------------------------------------------------------------------------------------------------------------------
    # JOURNAL
    # ------------------------------------------------------------------------------------------------------------------

    def journal(self, events: Sequence[Message]) -> None:
        """Append published events, in order."""
        if not events:
            return
        self._conn.executemany(_INSERT_JOURNAL, [_journal_row(e) for e in events])

    def prune_journal(self, before: datetime, *, batch: int = 10_000) -> int:
        """Delete journal rows whose `ts_event` is before `before`; returns how many were deleted.

        In batches, each its own short transaction: a first prune of a long-running store must not hold the write
        lock for long (status and halt write to the same file concurrently).
        """
        cutoff = _ts(before)
        total = 0
        while True:
            with self.transaction():
                deleted = self._conn.execute(
                    "DELETE FROM journal WHERE seq IN (SELECT seq FROM journal WHERE ts_event < ? LIMIT ?)",
                    (cutoff, batch),
                ).rowcount
            total += deleted
            if deleted < batch:
                return total

    def journal_count(self, type_name: str | None = None) -> int:
        if type_name is None:
            row = self._conn.execute("SELECT COUNT(*) FROM journal").fetchone()
        else:
            row = self._conn.execute("SELECT COUNT(*) FROM journal WHERE type = ?", (type_name,)).fetchone()
        return int(row[0])

    def journal_tail(self, n: int) -> list[dict[str, Any]]:
        """The last `n` journal rows, oldest first, with the payload decoded."""
        if n <= 0:
            return []
        rows = self._conn.execute(
            "SELECT seq, msg_id, type, ts_event, correlation_id, payload FROM journal ORDER BY seq DESC LIMIT ?", (n,)
        ).fetchall()
        return [
            {
                "seq": seq,
                "id": msg_id,
                "type": type_name,
                "ts_event": ts_event,
                "correlation_id": correlation_id,
                "payload": json.loads(payload),
            }
            for seq, msg_id, type_name, ts_event, correlation_id, payload in reversed(rows)
        ]

    # ------------------------------------------------------------------------------------------------------------------
    # FLAGS
    # ------------------------------------------------------------------------------------------------------------------

    def set_flag(self, name: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO flags (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def get_flag(self, name: str) -> str | None:
        row = self._conn.execute("SELECT value FROM flags WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def clear_flag(self, name: str) -> None:
        self._conn.execute("DELETE FROM flags WHERE name = ?", (name,))

    def flags(self) -> dict[str, str]:
        return dict(self._conn.execute("SELECT name, value FROM flags ORDER BY name").fetchall())

    # ------------------------------------------------------------------------------------------------------------------
    # SUMMARY
    # ------------------------------------------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Counts and latest values for `tradingd status`; JSON-ready (money as strings)."""
        by_status = dict(self._conn.execute("SELECT status, COUNT(*) FROM orders GROUP BY status ORDER BY status"))
        mark = self.latest_equity_mark()
        peak = self.peak_equity()
        return {
            "path": str(self.path),
            "schema_version": self.schema_version,
            "orders": {
                "total": sum(by_status.values()),
                "open": sum(n for status, n in by_status.items() if status in _OPEN_STATUS_VALUES),
                "by_status": by_status,
            },
            "fills": int(self._conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0]),
            "positions": int(self._conn.execute("SELECT COUNT(*) FROM positions").fetchone()[0]),
            "last_equity_mark": None
            if mark is None
            else {
                "session": mark.session.isoformat(),
                "start_equity": str(mark.start_equity),
                "last_equity": str(mark.last_equity),
                "peak_equity": str(mark.peak_equity),
            },
            "peak_equity": None if peak is None else str(peak),
            "journal": self.journal_count(),
            "flags": self.flags(),
        }

    # ------------------------------------------------------------------------------------------------------------------
    # LISTINGS (read-only queries for `tradingd orders` / `tradingd fills`)
    # ------------------------------------------------------------------------------------------------------------------

    def order_records(self, statuses: Collection[OrderStatus] | None = None) -> list[OrderRecord]:
        """Stored orders in the order they were first recorded; with `statuses`, only those (empty: none)."""
        if statuses is None:
            rows = self._conn.execute(f"{_SELECT_ORDERS} ORDER BY rowid")
        else:
            values = sorted({OrderStatus(s).value for s in statuses})
            marks = ", ".join("?" * len(values))
            rows = self._conn.execute(f"{_SELECT_ORDERS} WHERE status IN ({marks}) ORDER BY rowid", values)
        return [_order_record(row) for row in rows]


# ----------------------------------------------------------------------------------------------------------------------
# MIGRATIONS (the schema `SqliteDb` applies when it opens the file)
# ----------------------------------------------------------------------------------------------------------------------


def check_state_db(path: Path) -> None:
    """Raise `StateStoreError` with the reason unless `path` is a sound state DB this program can open.

    For a file the daemon did not just open itself (a backup about to be restored): the full `integrity_check`
    (quick_check skips the index-to-table checks), the schema version, and every table and column the program uses.
    Read-only: the file is never changed, and nothing is set aside.
    """
    if not path.is_file():
        raise StateStoreError("no such file" if not path.exists() else "not a regular file")
    try:
        conn = connect_read_only(path)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchall()
            if result != [("ok",)]:
                raise StateStoreError("integrity check failed: " + "; ".join(str(r[0]) for r in result[:5]))
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StateStoreError(f"schema version {version} is newer than this program's {SCHEMA_VERSION}")
            verify_schema(conn, _migrate, STATE_DB_WHAT)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StateStoreError(str(exc)) from None


def _migrate(conn: sqlite3.Connection) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StateStoreError(
            f"state database schema version {version} is newer than this program's {SCHEMA_VERSION}; "
            "upgrade tradingd or point DATA_DIR elsewhere"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _MIGRATIONS[target - 1]:
                conn.execute(statement)
            # user_version lives in the database header and is transactional: DDL and version bump commit together.
            conn.execute(f"PRAGMA user_version = {target:d}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


# ----------------------------------------------------------------------------------------------------------------------
# CONVERSIONS
# ----------------------------------------------------------------------------------------------------------------------


def _ts(value: datetime) -> str:
    """Fixed-width UTC ISO-8601 (always with microseconds), so that string order is time order."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the store only takes timezone-aware datetimes")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def _ts_or_none(value: datetime | None) -> str | None:
    return None if value is None else _ts(value)


def _parse_ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _dec_or_none(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _parse_dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _order_record(row: tuple[Any, ...]) -> OrderRecord:
    (coid, boid, symbol, side, status, qty, notional, filled_qty, avg_px, submitted, updated, reason, strategy, tier,
     bar_ts) = row  # fmt: skip
    order = BrokerOrder(
        client_order_id=coid,
        broker_order_id=boid,
        symbol=symbol,
        side=OrderSide(side),
        status=OrderStatus(status),
        qty=_parse_dec(qty),
        notional=_parse_dec(notional),
        filled_qty=Decimal(filled_qty),
        filled_avg_price=_parse_dec(avg_px),
        submitted_at=_parse_ts(submitted),
        updated_at=_parse_ts(updated),
        reason=reason,
    )
    return OrderRecord(
        order=order, strategy=strategy, tier=None if tier is None else Tier(tier), signal_bar_ts=_parse_ts(bar_ts)
    )


def _fill_row(fill: Fill) -> tuple[str, ...]:
    return (
        fill.execution_id,
        fill.client_order_id,
        fill.symbol,
        fill.side.value,
        str(fill.qty),
        str(fill.price),
        _ts(fill.ts),
    )


def _fill(row: tuple[Any, ...]) -> Fill:
    execution_id, coid, symbol, side, qty, price, ts = row
    return Fill(
        execution_id=execution_id,
        client_order_id=coid,
        symbol=symbol,
        side=OrderSide(side),
        qty=Decimal(qty),
        price=Decimal(price),
        ts=datetime.fromisoformat(ts),
    )


def _equity_mark(row: tuple[Any, ...]) -> EquityMark:
    session, start, last, peak = row
    return EquityMark(
        session=date.fromisoformat(session),
        start_equity=Decimal(start),
        last_equity=Decimal(last),
        peak_equity=Decimal(peak),
    )


def _journal_row(event: Message) -> tuple[int, str, str, str, str]:
    cls = type(event)
    names = _PAYLOAD_FIELDS.get(cls)
    if names is None:
        names = _PAYLOAD_FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.name not in _JOURNAL_COLUMNS)
    payload = {name: getattr(event, name) for name in names}
    return (
        event.id,
        cls.__name__,
        _ts_cached(event.ts_event),
        event.correlation_id,
        # Rejection reasons and error details travel in payloads; one scan of the text masks any secret in them.
        redact(orjson.dumps(payload, default=_json_default, option=_JSON_OPTIONS).decode()),
    )


_PAYLOAD_FIELDS: dict[type, tuple[str, ...]] = {}
_TS_CACHE: dict[datetime, str] = {}


def _ts_cached(value: datetime) -> str:
    # One iteration's messages share a handful of instants (the clock's now): format each once.
    text = _TS_CACHE.get(value)
    if text is None:
        if len(_TS_CACHE) >= 4096:
            _TS_CACHE.clear()
        text = _TS_CACHE[value] = _ts(value)
    return text


# orjson serialises str/int/float/bool/None, datetimes, enums, lists and dicts natively (NaN/inf become null: JSON has
# no such numbers, and the journal never invents one); everything else goes through _json_default.
_JSON_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS


def _json_default(value: Any) -> Any:
    if isinstance(value, Message):
        # A message nested in another (the signal inside SignalValidated, OrderDenied, …) is journaled on its own,
        # so a reference by id is enough here.
        return {"ref": value.id, "type": type(value).__name__}
    if isinstance(value, BarFrame):
        # The bars themselves are market data, not state; the journal records what the agents saw.
        last = str(value.timestamps[-1]) if value.n_rows else None
        return {"symbols": value.n_symbols, "rows": value.n_rows, "last_bar": last}
    if isinstance(value, Decimal):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return {"shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, MappingProxyType):
        return dict(value)  # a message's read-only counts (`frozen_counts`)
    return str(value)
