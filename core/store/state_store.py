"""`StateStore`: the one object the daemon and the CLI hold for the state DB.

It owns the connection and the transaction and composes the parts, one per table or concern (`orders.py`,
`positions.py`, `equity.py`, `journal.py`, `flags.py`, `high_water.py`), which all work on its connection: whatever
runs inside `transaction()` commits together, whichever parts it touches. Its methods are the parts' methods under
the names the callers use; `summary()` reads a little of every part for `tradingd status`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.exit_reasons import ExitReason
from core.messages import Message
from core.sqlite_db import SqliteOwner, wall_clock_utc
from core.store.checkpoint import BACKSTOP_PAGES, WAL_SIZE_LIMIT_BYTES, IdleCheckpointer
from core.store.equity import EquityMark, EquityMarks
from core.store.flags import Flags
from core.store.high_water import HighWaterMark, HighWaterMarks
from core.store.journal import Journal, JournalRow
from core.store.orders import Fills, OrderRecord, Orders
from core.store.positions import Positions
from core.store.schema import open_state_db, open_state_db_read_only, schema_version
from core.types import BrokerOrder, Fill, OrderStatus, Position, Tier

# What the daemon knew of an order when it wrote it ahead of the broker call: strategy, tier, signal bar time.
OrderInfo = tuple[str, str | None, datetime | None, ExitReason | None]  # strategy, tier, bar time, exit reason


class StateStore(SqliteOwner):
    """SQLite-backed state of the daemon. Open it, use it, `close()` it (or use it as a context manager).

    Opened through `core/store/schema.py::open_state_db`: WAL, private files, and a corrupt or foreign file set aside
    as `state.db.corrupt-<UTC time>` (logged `state_db_corrupt`) with a fresh state in its place. `utc_now` names that
    file (wall time by default).
    """

    def __init__(
        self, path: Path, *, utc_now: Callable[[], datetime] = wall_clock_utc, read_only: bool = False
    ) -> None:
        """`read_only`: an existing file read beside its owner (the dashboard): writes raise, nothing is created."""
        self._db = open_state_db_read_only(Path(path)) if read_only else open_state_db(Path(path), utc_now=utc_now)
        # WAL checkpoints between ticks (`core/store/checkpoint.py`), set up by the first transaction: a store only read
        # (`tradingd status`) changes no setting.
        self._checkpointer: IdleCheckpointer | None = None
        self._orders = Orders(self._db)
        self._fills = Fills(self._db)
        self._positions = Positions(self._db)
        self._equity = EquityMarks(self._db)
        self._journal = Journal(self._db)
        self._flags = Flags(self._db)
        self._high_water = HighWaterMarks(self._db)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all. Nested use is a savepoint inside the outer transaction."""
        if self._checkpointer is None:
            self._db.conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
            self._db.conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
            self._checkpointer = IdleCheckpointer(self._db.conn)
        with self._db.transaction():
            yield
        self._checkpointer.committed()

    @contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Every read inside sees one committed state (one WAL snapshot, taken at the first read): a reader beside the
        daemon (the dashboard's request) never mixes two iterations. Reads only: nothing is written."""
        self._db.conn.execute("BEGIN")
        try:
            yield
        finally:
            if self._db.conn.in_transaction:
                self._db.conn.execute("COMMIT")

    def checkpoint_if_due(self) -> bool:
        """Between ticks (the orchestrator's call): copy the WAL into the database file when due; whether it ran."""
        return self._checkpointer is not None and self._checkpointer.run_if_due()

    # ------------------------------------------------------------------------------------------------------------------
    # ORDERS AND FILLS
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
        return self._orders.upsert(order, strategy=strategy, tier=tier, signal_bar_ts=signal_bar_ts)

    def upsert_orders(
        self, orders: Sequence[BrokerOrder], *, strategy: str = "", info: Sequence[OrderInfo] | None = None
    ) -> None:
        """`upsert_order` of many orders in one statement (same rules); `info`: each order's (strategy, tier, signal
        bar time, exit reason), else `strategy` for all and no tier, bar time or exit reason."""
        if info is None:
            self._orders.upsert_many([(order, strategy, None, None, None) for order in orders])
        else:
            self._orders.upsert_many([(order, *extra) for order, extra in zip(orders, info, strict=True)])

    def has_order(self, client_order_id: str) -> bool:
        """Whether an order under this id was ever stored (cheaper than `get_order`: nothing is decoded)."""
        return self._orders.exists(client_order_id)

    def known_order_ids(self, client_order_ids: Collection[str]) -> set[str]:
        """Which of these ids were ever stored (`has_order` of many, in one query per 500 ids)."""
        return self._orders.existing(client_order_ids)

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        record = self._orders.record(client_order_id)
        return None if record is None else record.order

    def order_record(self, client_order_id: str) -> OrderRecord | None:
        return self._orders.record(client_order_id)

    def order_records(self, statuses: Collection[OrderStatus] | None = None) -> list[OrderRecord]:
        """Stored orders in the order they were first recorded; with `statuses`, only those (empty: none)."""
        return self._orders.records(statuses)

    def open_orders(self) -> list[BrokerOrder]:
        return self._orders.open()

    def pending_orders(self) -> list[BrokerOrder]:
        """Orders written ahead of their broker call whose outcome was never stored (oldest first)."""
        return self._orders.pending()

    def discard_pending(self, client_order_id: str) -> bool:
        """Forget a write-ahead row the broker certainly never took; returns whether one was deleted."""
        return self._orders.discard_pending(client_order_id)

    def order_tags(self) -> dict[str, tuple[str, Tier | None, ExitReason | None]]:
        """Every stored order's (strategy tag, tier, exit reason) by client order id (what the report's ledger
        needs)."""
        return self._orders.tags()

    def record_fill(self, fill: Fill) -> bool:
        """Record one execution. Returns False if this execution id was already recorded (nothing changes)."""
        return self._fills.record(fill)

    def record_fills(self, fills: Sequence[Fill]) -> int:
        """Record many executions in one statement; returns how many were new."""
        return self._fills.record_many(fills)

    def fills(self, since: datetime | None = None) -> list[Fill]:
        """Fills in time order; with `since`, only those at or after it."""
        return self._fills.read(since)

    def last_fill_ts(self) -> datetime | None:
        return self._fills.last_ts()

    # ------------------------------------------------------------------------------------------------------------------
    # POSITIONS AND EQUITY MARKS
    # ------------------------------------------------------------------------------------------------------------------

    def save_positions(self, positions: Mapping[str, Position]) -> None:
        """Replace every stored position with these."""
        self._positions.save(positions)

    def load_positions(self) -> dict[str, Position]:
        return self._positions.load()

    def mark_equity(self, session: date, equity: Decimal) -> EquityMark:
        """Record equity for a session: its first mark is its start-of-day equity; every mark moves the last and the
        all-time peak."""
        return self._equity.mark(session, equity)

    def equity_mark(self, session: date) -> EquityMark | None:
        return self._equity.get(session)

    def equity_marks(self, start: date | None = None, end: date | None = None) -> list[EquityMark]:
        """The marks of the sessions from `start` to `end` (inclusive; None: unbounded), oldest first."""
        return self._equity.between(start, end)

    def latest_equity_mark(self) -> EquityMark | None:
        """The mark of the most recent session."""
        return self._equity.latest()

    def save_high_water(self, mark: HighWaterMark) -> None:
        """Insert or replace the trailing stop's high-water mark of `mark.symbol`."""
        self._high_water.save(mark)

    def high_water_marks(self) -> dict[str, HighWaterMark]:
        return self._high_water.load()

    def delete_high_water(self, symbols: Iterable[str]) -> None:
        self._high_water.delete(symbols)

    # ------------------------------------------------------------------------------------------------------------------
    # JOURNAL AND FLAGS
    # ------------------------------------------------------------------------------------------------------------------

    def journal(self, events: Sequence[Message]) -> None:
        """Append published events, in order."""
        self._journal.append(events)

    def latest_journal(self, types: Sequence[str], limit: int) -> list[JournalRow]:
        """The newest journal rows of these message types, newest first."""
        return self._journal.latest(types, limit)

    def prune_journal(self, before: datetime, *, batch: int = 10_000) -> int:
        """Delete journal rows from before `before`, in short transactions; returns how many were deleted."""
        return self._journal.prune(before, batch=batch)

    def set_flag(self, name: str, value: str) -> None:
        self._flags.set_flag(name, value)

    def get_flag(self, name: str) -> str | None:
        return self._flags.get_flag(name)

    def clear_flag(self, name: str) -> None:
        self._flags.clear_flag(name)

    def flags_with_prefix(self, prefix: str) -> dict[str, str]:
        return self._flags.with_prefix(prefix)

    # ------------------------------------------------------------------------------------------------------------------
    # SUMMARY
    # ------------------------------------------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Counts and latest values for `tradingd status`; JSON-ready (money as strings)."""
        mark = self._equity.latest()
        peak = self._equity.peak()
        return {
            "path": str(self.path),
            "schema_version": schema_version(self._db.conn),
            "orders": self._orders.counts(),
            "fills": self._fills.count(),
            "positions": self._positions.count(),
            "last_equity_mark": None
            if mark is None
            else {
                "session": mark.session.isoformat(),
                "start_equity": str(mark.start_equity),
                "last_equity": str(mark.last_equity),
                "peak_equity": str(mark.peak_equity),
            },
            "peak_equity": None if peak is None else str(peak),
            "journal": self._journal.count(),
            "flags": self._flags.as_dict(),
        }
