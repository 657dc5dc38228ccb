"""Orders and their fills: the `orders` and `fills` tables.

An order is keyed by its client order id, so a restart never places one twice; it is written ahead of the broker
call (`pending_submit`) with what the daemon knew then (strategy, tier, signal bar time), which the broker does not
keep. A fill is keyed by its execution id, so a replayed stream is harmless.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from core.exit_reasons import ExitReason
from core.redact import redact
from core.sqlite_db import SqliteDb
from core.store.codec import parse_decimal, parse_time, time_text
from core.types import BrokerOrder, Fill, OrderSide, OrderStatus, OrderType, Tier, TimeInForce

_OPEN_STATUS_VALUES: Final = tuple(s.value for s in OrderStatus if s.is_open)
_FINAL_STATUS_VALUES: Final = tuple(s.value for s in OrderStatus if not s.is_open)
_ORDER_COLUMNS: Final = (
    "client_order_id, broker_order_id, symbol, side, status, qty, notional, filled_qty, filled_avg_price, "
    "submitted_at, updated_at, reason, strategy, tier, signal_bar_ts, order_type, time_in_force, stop_price, "
    "trail_percent, exit_reason"
)
# A final order never changes status again: a late or replayed update cannot reopen a filled/canceled order, and a
# stale terminal update cannot turn a fill into a cancel. What the daemon knew at submit time is kept when a later
# update (e.g. from the broker's stream) does not know it. A trailing stop's `stop_price` is its level as last
# reported: it moves with the high-water mark, and an update without one keeps the last.
_UPSERT_ORDER: Final = f"""
    INSERT INTO orders ({_ORDER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
        signal_bar_ts = COALESCE(excluded.signal_bar_ts, signal_bar_ts),
        order_type = excluded.order_type,
        time_in_force = excluded.time_in_force,
        stop_price = COALESCE(excluded.stop_price, stop_price),
        trail_percent = COALESCE(excluded.trail_percent, trail_percent),
        exit_reason = COALESCE(excluded.exit_reason, exit_reason)
    WHERE status NOT IN ({", ".join(f"'{s}'" for s in _FINAL_STATUS_VALUES)}) OR excluded.status = status
"""  # noqa: S608 - the interpolated values are our own enum constants, never input
_SELECT_ORDERS: Final = f"SELECT {_ORDER_COLUMNS} FROM orders"  # noqa: S608 - constant column list
_ORDER_EXISTS: Final = "SELECT 1 FROM orders WHERE client_order_id = ?"
_SELECT_OPEN_ORDERS: Final = (
    f"{_SELECT_ORDERS} WHERE status IN ({', '.join('?' * len(_OPEN_STATUS_VALUES))}) ORDER BY rowid"
)
# Bound parameters per `IN (...)` query: under SQLite's oldest default limit (999), whatever the build.
_IN_CHUNK: Final = 500
_INSERT_FILL: Final = (
    "INSERT OR IGNORE INTO fills (execution_id, client_order_id, symbol, side, qty, price, ts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_FILLS: Final = "SELECT execution_id, client_order_id, symbol, side, qty, price, ts FROM fills"


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """A stored order with what the daemon knew when it placed it (the broker does not keep these)."""

    order: BrokerOrder
    strategy: str
    tier: Tier | None
    signal_bar_ts: datetime | None
    exit_reason: ExitReason | None = None  # an exit's reason (core/exit_reasons.py); None for entries and old rows


class Orders:
    """The `orders` table, read and written on its owner's connection (and inside its transaction, if one is open)."""

    def __init__(self, db: SqliteDb) -> None:
        self._conn = db.conn

    def upsert(self, order: BrokerOrder, *, strategy: str, tier: str | None, signal_bar_ts: datetime | None) -> bool:
        """Insert or update an order. Returns False when the update was refused because the order is already final."""
        cur = self._conn.execute(_UPSERT_ORDER, _order_row(order, strategy, tier, signal_bar_ts))
        return cur.rowcount > 0

    def upsert_many(
        self, rows: Sequence[tuple[BrokerOrder, str, str | None, datetime | None, ExitReason | None]]
    ) -> None:
        """`upsert` of many orders (order, strategy, tier, signal bar time, exit reason) in one statement, in order;
        the same SQL
        (a final order is never reopened), one call into SQLite instead of one per order."""
        if rows:
            self._conn.executemany(_UPSERT_ORDER, [_order_row(*row) for row in rows])

    def exists(self, client_order_id: str) -> bool:
        """Whether a row holds this id (no row decoded: the stop planner asks this for every id it considers)."""
        return self._conn.execute(_ORDER_EXISTS, (client_order_id,)).fetchone() is not None

    def existing(self, client_order_ids: Collection[str]) -> set[str]:
        """Which of these ids a row holds: one query per chunk instead of one `exists` per id (an iteration's
        approvals are checked together)."""
        ids = list(dict.fromkeys(client_order_ids))
        found: set[str] = set()
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT client_order_id FROM orders WHERE client_order_id IN ({marks})"  # noqa: S608 - marks only
            found.update(row[0] for row in self._conn.execute(sql, chunk))
        return found

    def record(self, client_order_id: str) -> OrderRecord | None:
        row = self._conn.execute(f"{_SELECT_ORDERS} WHERE client_order_id = ?", (client_order_id,)).fetchone()
        return None if row is None else _order_record(row)

    def open(self) -> list[BrokerOrder]:
        return [_order_record(row).order for row in self._conn.execute(_SELECT_OPEN_ORDERS, _OPEN_STATUS_VALUES)]

    def pending(self) -> list[BrokerOrder]:
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

    def records(self, statuses: Collection[OrderStatus] | None = None) -> list[OrderRecord]:
        """Stored orders in the order they were first recorded; with `statuses`, only those (empty: none)."""
        if statuses is None:
            rows = self._conn.execute(f"{_SELECT_ORDERS} ORDER BY rowid")
        else:
            values = sorted({OrderStatus(s).value for s in statuses})
            marks = ", ".join("?" * len(values))
            rows = self._conn.execute(f"{_SELECT_ORDERS} WHERE status IN ({marks}) ORDER BY rowid", values)
        return [_order_record(row) for row in rows]

    def tags(self) -> dict[str, tuple[str, Tier | None, ExitReason | None]]:
        """Every stored order's (strategy tag, tier, exit reason) by client order id, without decoding whole orders
        (the report's ledger reads tens of thousands)."""
        rows = self._conn.execute("SELECT client_order_id, strategy, tier, exit_reason FROM orders")
        return {
            order_id: (strategy, None if tier is None else Tier(tier), None if why is None else ExitReason(why))
            for order_id, strategy, tier, why in rows
        }

    def counts(self) -> dict[str, Any]:
        """How many orders in all, open, and per status (for `tradingd status`)."""
        by_status = dict(self._conn.execute("SELECT status, COUNT(*) FROM orders GROUP BY status ORDER BY status"))
        return {
            "total": sum(by_status.values()),
            "open": sum(n for status, n in by_status.items() if status in _OPEN_STATUS_VALUES),
            "by_status": by_status,
        }


class Fills:
    """The `fills` table, on its owner's connection."""

    def __init__(self, db: SqliteDb) -> None:
        self._conn = db.conn

    def record(self, fill: Fill) -> bool:
        """Record one execution. Returns False if this execution id was already recorded (nothing changes)."""
        return self._conn.execute(_INSERT_FILL, _fill_row(fill)).rowcount > 0

    def record_many(self, fills: Sequence[Fill]) -> int:
        """Record many executions in one statement; returns how many were new."""
        if not fills:
            return 0
        return self._conn.executemany(_INSERT_FILL, [_fill_row(f) for f in fills]).rowcount

    def read(self, since: datetime | None = None) -> list[Fill]:
        """Fills in time order; with `since`, only those at or after it."""
        if since is None:
            rows = self._conn.execute(f"{_SELECT_FILLS} ORDER BY ts, rowid")
        else:
            rows = self._conn.execute(f"{_SELECT_FILLS} WHERE ts >= ? ORDER BY ts, rowid", (time_text(since),))
        return [_fill(row) for row in rows]

    def last_ts(self) -> datetime | None:
        """The latest fill's time (timestamps are fixed-width ISO text, so MAX orders them), without reading all."""
        return parse_time(self._conn.execute("SELECT MAX(ts) FROM fills").fetchone()[0])

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0])


def _order_row(
    order: BrokerOrder,
    strategy: str,
    tier: str | None,
    signal_bar_ts: datetime | None,
    exit_reason: ExitReason | None = None,
) -> tuple[str | None, ...]:
    # Written ~75k times in a default replay (each order ahead of its broker call, then with its answer and updates):
    # the None checks inline and enum values read through `_value_`, which skips the `value` property's descriptor
    # (same text: these are StrEnums). Timestamps go through `time_text`'s per-instant cache.
    qty, notional, avg_px, stop_price, trail = (
        order.qty,
        order.notional,
        order.filled_avg_price,
        order.stop_price,
        order.trail_percent,
    )
    submitted, updated = order.submitted_at, order.updated_at
    reason = order.reason
    return (
        order.client_order_id,
        order.broker_order_id,
        order.symbol,
        order.side._value_,
        order.status._value_,
        None if qty is None else str(qty),
        None if notional is None else str(notional),
        str(order.filled_qty),
        None if avg_px is None else str(avg_px),
        None if submitted is None else time_text(submitted),
        None if updated is None else time_text(updated),
        # A broker's refusal text can echo the request (keys included): scrubbed before it is stored.
        redact(reason) if reason else reason,
        strategy,
        None if tier is None else Tier(tier)._value_,
        None if signal_bar_ts is None else time_text(signal_bar_ts),
        order.order_type._value_,
        order.time_in_force._value_,
        None if stop_price is None else str(stop_price),
        None if trail is None else str(trail),
        None if exit_reason is None else exit_reason._value_,
    )


def _order_record(row: tuple[Any, ...]) -> OrderRecord:
    (coid, boid, symbol, side, status, qty, notional, filled_qty, avg_px, submitted, updated, reason, strategy, tier,
     bar_ts, order_type, time_in_force, stop_price, trail_percent, exit_reason) = row  # fmt: skip
    order = BrokerOrder(
        client_order_id=coid,
        broker_order_id=boid,
        symbol=symbol,
        side=OrderSide(side),
        status=OrderStatus(status),
        qty=parse_decimal(qty),
        notional=parse_decimal(notional),
        filled_qty=Decimal(filled_qty),
        filled_avg_price=parse_decimal(avg_px),
        submitted_at=parse_time(submitted),
        updated_at=parse_time(updated),
        reason=reason,
        order_type=OrderType(order_type),
        time_in_force=TimeInForce(time_in_force),
        stop_price=parse_decimal(stop_price),
        trail_percent=parse_decimal(trail_percent),
    )
    return OrderRecord(
        order=order,
        strategy=strategy,
        tier=None if tier is None else Tier(tier),
        signal_bar_ts=parse_time(bar_ts),
        exit_reason=None if exit_reason is None else ExitReason(exit_reason),
    )


def _fill_row(fill: Fill) -> tuple[str, ...]:
    return (
        fill.execution_id,
        fill.client_order_id,
        fill.symbol,
        fill.side._value_,
        str(fill.qty),
        str(fill.price),
        time_text(fill.ts),
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
