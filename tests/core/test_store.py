"""StateStore: what the daemon relies on after a restart, a crash or a corrupted disk."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from core import store as store_module
from core.messages import (
    BarsFetched,
    IterationCompleted,
    IterationStats,
    Message,
    OrderFilled,
    OrderSubmitted,
    SignalGenerated,
    SignalValidated,
)
from core.store import SCHEMA_VERSION, EquityMark, StateStore, StateStoreError
from core.types import BarFrame, BrokerOrder, Fill, OrderSide, OrderStatus, Position, Tier, bar_price
from tests.fakes.damage import DAMAGE, damage

T0 = datetime(2018, 2, 5, 21, 0, tzinfo=UTC)  # the close of 2018-02-05, inside the bundled data's range
QUARANTINE_TIME = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
OPEN_STATUSES = [s for s in OrderStatus if s.is_open]
FINAL_STATUSES = [s for s in OrderStatus if not s.is_open]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "state.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[StateStore]:
    with StateStore(db_path, utc_now=lambda: QUARANTINE_TIME) as s:
        yield s


def make_order(
    coid: str = "zscore-AAPL-buy-1",
    *,
    status: OrderStatus = OrderStatus.NEW,
    symbol: str = "AAPL",
    qty: Decimal | None = None,
    notional: Decimal | None = Decimal("1500.00"),
    filled_qty: Decimal = Decimal(0),
    filled_avg_price: Decimal | None = None,
    broker_order_id: str = "b-1",
    updated_at: datetime | None = T0,
    reason: str = "",
) -> BrokerOrder:
    return BrokerOrder(
        client_order_id=coid,
        broker_order_id=broker_order_id,
        symbol=symbol,
        side=OrderSide.BUY,
        status=status,
        qty=qty,
        notional=notional,
        filled_qty=filled_qty,
        filled_avg_price=filled_avg_price,
        submitted_at=T0,
        updated_at=updated_at,
        reason=reason,
    )


def make_fill(execution_id: str = "x-1", *, ts: datetime = T0, qty: str = "8.851540744", price: str = "159.54") -> Fill:
    return Fill(
        execution_id=execution_id,
        client_order_id="zscore-AAPL-buy-1",
        symbol="AAPL",
        side=OrderSide.BUY,
        qty=Decimal(qty),
        price=Decimal(price),
        ts=ts,
    )


def make_signal(symbol: str = "AAPL", price: float = 159.54) -> SignalGenerated:
    return SignalGenerated(
        ts_event=T0,
        ts_init=T0,
        correlation_id=f"c-{symbol}",
        strategy="zscore",
        symbol=symbol,
        side=OrderSide.BUY,
        is_exit=False,
        price=bar_price(price),
        score=-2.4,
        volatility=0.012,
        bar_ts=T0 - timedelta(hours=6, minutes=30),
        reason="zscore<-2",
    )


# ----------------------------------------------------------------------------------------------------------------------
# OPENING AND SCHEMA
# ----------------------------------------------------------------------------------------------------------------------


def test_open_creates_parent_dirs_and_a_wal_database(db_path: Path) -> None:
    with StateStore(db_path) as s:
        assert s.schema_version == SCHEMA_VERSION
    assert db_path.is_file()
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    finally:
        conn.close()


def test_connection_uses_synchronous_normal(store: StateStore) -> None:
    assert store._conn.execute("PRAGMA synchronous").fetchone() == (1,)  # 1 == NORMAL


def test_every_schema_version_has_a_migration() -> None:
    assert len(store_module._MIGRATIONS) == SCHEMA_VERSION


def test_migration_is_idempotent_when_tables_exist_but_version_was_not_bumped(db_path: Path) -> None:
    # As if a migration's DDL had run but the process died before its version bump.
    with StateStore(db_path) as s:
        s.set_flag("halted", "1")
        s._conn.execute("PRAGMA user_version = 0")
    with StateStore(db_path) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.get_flag("halted") == "1"


def test_a_newer_schema_is_refused_and_left_untouched(db_path: Path) -> None:
    with StateStore(db_path) as s:
        s.set_flag("halted", "1")
        s._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StateStoreError, match="newer"):
        StateStore(db_path)
    assert list(db_path.parent.glob("*.corrupt-*")) == []


# ----------------------------------------------------------------------------------------------------------------------
# CORRUPT FILES
# ----------------------------------------------------------------------------------------------------------------------


def test_garbage_file_is_quarantined_and_a_fresh_db_started(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    garbage = b"this is not an SQLite database\x00\xff" * 300
    db_path.write_bytes(garbage)

    with capture_logs() as logs, StateStore(db_path, utc_now=lambda: QUARANTINE_TIME) as s:
        assert s.all_orders() == []
        assert s.upsert_order(make_order())
        assert s.get_order("zscore-AAPL-buy-1") == make_order()

    quarantined = db_path.with_name("state.db.corrupt-20240102T030405Z")
    assert quarantined.read_bytes() == garbage
    warnings = [e for e in logs if e["event"] == "state_db_corrupt"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["moved_to"] == str(quarantined)


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_state_db_is_set_aside_and_a_fresh_one_keeps_working(db_path: Path, how: str) -> None:
    with StateStore(db_path) as s:
        s.journal([make_signal(symbol=f"S{i:03d}") for i in range(300)])
        s.set_flag("halted", "old")
    content = damage(db_path, how)

    with capture_logs() as logs, StateStore(db_path, utc_now=lambda: QUARANTINE_TIME) as s:
        assert s.get_flag("halted") is None  # a fresh state, not the damaged one
        with s.transaction():
            s.upsert_order(make_order())
        assert s.get_order("zscore-AAPL-buy-1") == make_order()

    quarantined = db_path.with_name("state.db.corrupt-20240102T030405Z")
    assert quarantined.read_bytes() == content
    assert [(e["event"], e["moved_to"]) for e in logs] == [("state_db_corrupt", str(quarantined))]


def test_damaged_page_inside_a_valid_file_is_quarantined(db_path: Path) -> None:
    with StateStore(db_path) as s:
        s.journal([make_signal(symbol=f"S{i:03d}") for i in range(300)])
    data = bytearray(db_path.read_bytes())
    page_size = 4096
    assert len(data) > 4 * page_size
    data[2 * page_size : 3 * page_size] = b"\xab" * page_size
    db_path.write_bytes(bytes(data))

    with capture_logs() as logs, StateStore(db_path, utc_now=lambda: QUARANTINE_TIME) as s:
        assert s.journal_count() == 0

    assert db_path.with_name("state.db.corrupt-20240102T030405Z").read_bytes() == bytes(data)
    assert [e["event"] for e in logs] == ["state_db_corrupt"]


def test_second_corruption_in_the_same_second_does_not_overwrite_the_first(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    for content in (b"first garbage" * 100, b"second garbage" * 100):
        db_path.write_bytes(content)
        StateStore(db_path, utc_now=lambda: QUARANTINE_TIME).close()
    assert db_path.with_name("state.db.corrupt-20240102T030405Z").read_bytes() == b"first garbage" * 100
    assert db_path.with_name("state.db.corrupt-20240102T030405Z-2").read_bytes() == b"second garbage" * 100


def test_stale_wal_sidecar_moves_with_the_corrupt_file(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"garbage" * 500)
    wal = db_path.with_name("state.db-wal")
    wal.write_bytes(b"old wal frames" * 10)

    with StateStore(db_path, utc_now=lambda: QUARANTINE_TIME) as s:
        s.set_flag("halted", "1")

    assert db_path.with_name("state.db.corrupt-20240102T030405Z-wal").read_bytes() == b"old wal frames" * 10
    with StateStore(db_path) as s:
        assert s.get_flag("halted") == "1"


def test_a_path_that_cannot_be_opened_is_an_error_not_a_corruption(db_path: Path) -> None:
    db_path.mkdir(parents=True)  # a directory where the file should be: a fresh file would not fix this
    with pytest.raises(sqlite3.OperationalError):
        StateStore(db_path)
    assert db_path.is_dir()
    assert list(db_path.parent.glob("*.corrupt-*")) == []


# ----------------------------------------------------------------------------------------------------------------------
# ORDERS
# ----------------------------------------------------------------------------------------------------------------------


def test_order_round_trips_exactly(store: StateStore) -> None:
    order = make_order(
        status=OrderStatus.PARTIALLY_FILLED,
        qty=Decimal("12.345678901"),
        notional=None,
        filled_qty=Decimal("0.000000001"),
        filled_avg_price=Decimal("159.5400"),
        updated_at=T0.astimezone(timezone(timedelta(hours=-5))),  # same instant, reported in ET
        reason="partial",
    )
    store.upsert_order(order, strategy="zscore", tier=Tier.TIER3, signal_bar_ts=T0 - timedelta(days=1))

    got = store.get_order(order.client_order_id)
    assert got == order
    assert got is not None
    assert str(got.filled_avg_price) == "159.5400"  # the representation survives, not only the value
    record = store.order_record(order.client_order_id)
    assert record is not None
    assert (record.strategy, record.tier, record.signal_bar_ts) == ("zscore", Tier.TIER3, T0 - timedelta(days=1))


def test_unknown_order_is_none(store: StateStore) -> None:
    assert store.get_order("nope") is None
    assert store.order_record("nope") is None


def test_open_orders_are_those_with_an_open_status(store: StateStore) -> None:
    for i, status in enumerate(OrderStatus):
        store.upsert_order(make_order(f"o-{i}", status=status))

    assert [o.status for o in store.open_orders()] == OPEN_STATUSES
    assert [o.status for o in store.all_orders()] == list(OrderStatus)


def test_order_status_moves_forward(store: StateStore) -> None:
    store.upsert_order(make_order(status=OrderStatus.NEW))
    store.upsert_order(make_order(status=OrderStatus.ACCEPTED))
    filled = make_order(status=OrderStatus.FILLED, filled_qty=Decimal("9.4"), filled_avg_price=Decimal("159.54"))
    assert store.upsert_order(filled)

    assert store.get_order(filled.client_order_id) == filled
    assert store.open_orders() == []


@pytest.mark.parametrize("final", FINAL_STATUSES)
@pytest.mark.parametrize("stale", OPEN_STATUSES)
def test_final_status_never_regresses_to_open(store: StateStore, final: OrderStatus, stale: OrderStatus) -> None:
    store.upsert_order(make_order(status=final, filled_qty=Decimal(3)))

    assert not store.upsert_order(make_order(status=stale, filled_qty=Decimal(1)))

    got = store.get_order("zscore-AAPL-buy-1")
    assert got is not None
    assert (got.status, got.filled_qty) == (final, Decimal(3))
    assert store.open_orders() == []


def test_a_stale_terminal_update_cannot_turn_a_fill_into_a_cancel(store: StateStore) -> None:
    store.upsert_order(make_order(status=OrderStatus.FILLED, filled_qty=Decimal(3)))
    assert not store.upsert_order(make_order(status=OrderStatus.CANCELED))
    got = store.get_order("zscore-AAPL-buy-1")
    assert got is not None
    assert got.status is OrderStatus.FILLED


def test_same_final_status_may_refine_details(store: StateStore) -> None:
    store.upsert_order(make_order(status=OrderStatus.FILLED, filled_qty=Decimal(3)))
    refined = make_order(status=OrderStatus.FILLED, filled_qty=Decimal(3), filled_avg_price=Decimal("159.5"))
    assert store.upsert_order(refined)
    assert store.get_order(refined.client_order_id) == refined


def test_later_update_without_metadata_keeps_what_was_known_at_submit(store: StateStore) -> None:
    store.upsert_order(make_order(broker_order_id=""), strategy="zscore", tier="TIER1", signal_bar_ts=T0)
    store.upsert_order(make_order(status=OrderStatus.ACCEPTED, broker_order_id="b-9"))  # e.g. from the stream
    store.upsert_order(make_order(status=OrderStatus.FILLED, broker_order_id=""))

    record = store.order_record("zscore-AAPL-buy-1")
    assert record is not None
    assert (record.strategy, record.tier, record.signal_bar_ts) == ("zscore", Tier.TIER1, T0)
    assert record.order.broker_order_id == "b-9"


def test_naive_datetimes_are_refused(store: StateStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.upsert_order(make_order(updated_at=datetime(2018, 2, 5, 16)))


def test_unknown_tier_is_refused(store: StateStore) -> None:
    with pytest.raises(ValueError, match="TIER9"):
        store.upsert_order(make_order(), tier="TIER9")


# ----------------------------------------------------------------------------------------------------------------------
# FILLS
# ----------------------------------------------------------------------------------------------------------------------


def test_recording_the_same_execution_twice_is_a_no_op(store: StateStore) -> None:
    fill = make_fill()
    assert store.record_fill(fill) is True
    assert store.record_fill(make_fill(qty="999")) is False  # same execution id: the first word stands
    assert store.fills() == [fill]


def test_record_fills_counts_only_new_executions(store: StateStore) -> None:
    store.record_fill(make_fill("x-1"))
    added = store.record_fills([make_fill("x-1"), make_fill("x-2"), make_fill("x-3"), make_fill("x-3")])
    assert added == 2
    assert [f.execution_id for f in store.fills()] == ["x-1", "x-2", "x-3"]
    assert store.record_fills([]) == 0


def test_fills_since_is_inclusive_and_in_time_order(store: StateStore) -> None:
    times = [T0 + timedelta(minutes=m) for m in (30, 0, 15, 45)]
    for i, ts in enumerate(times):
        store.record_fill(make_fill(f"x-{i}", ts=ts))
    # A non-UTC bound must compare by instant, not by text.
    since = (T0 + timedelta(minutes=15)).astimezone(timezone(timedelta(hours=-5)))

    assert [f.ts for f in store.fills()] == sorted(times)
    assert [f.ts for f in store.fills(since=since)] == [T0 + timedelta(minutes=m) for m in (15, 30, 45)]


def test_fill_round_trips_exactly(store: StateStore) -> None:
    fill = make_fill(ts=T0 + timedelta(microseconds=1), qty="0.000000001", price="1234.5600")
    store.record_fill(fill)
    [got] = store.fills()
    assert got == fill
    assert str(got.price) == "1234.5600"


# ----------------------------------------------------------------------------------------------------------------------
# POSITIONS
# ----------------------------------------------------------------------------------------------------------------------


def test_save_positions_replaces_the_table(store: StateStore) -> None:
    aapl = Position("AAPL", Decimal("8.851540744"), Decimal("159.54"), Decimal("156.49"))
    msft = Position("MSFT", Decimal("3"), Decimal("88.00"), Decimal("88.52"))
    store.save_positions({"AAPL": aapl, "MSFT": msft})
    assert store.load_positions() == {"AAPL": aapl, "MSFT": msft}

    store.save_positions({"MSFT": msft})
    assert store.load_positions() == {"MSFT": msft}

    store.save_positions({})
    assert store.load_positions() == {}


# ----------------------------------------------------------------------------------------------------------------------
# EQUITY MARKS
# ----------------------------------------------------------------------------------------------------------------------


def test_start_of_day_equity_is_never_overwritten(store: StateStore) -> None:
    day = date(2018, 2, 5)
    store.mark_equity(day, Decimal("100000.00"))
    store.mark_equity(day, Decimal("98500.25"))
    mark = store.mark_equity(day, Decimal("99000.10"))

    assert mark == EquityMark(day, Decimal("100000.00"), Decimal("99000.10"), Decimal("100000.00"))
    assert store.equity_mark(day) == mark


def test_peak_is_the_all_time_high_and_never_falls(store: StateStore) -> None:
    d1, d2, d3 = date(2018, 2, 1), date(2018, 2, 2), date(2018, 2, 5)
    store.mark_equity(d1, Decimal("100000"))
    store.mark_equity(d1, Decimal("101500.50"))  # intraday high
    store.mark_equity(d1, Decimal("100800"))
    store.mark_equity(d2, Decimal("99000"))
    mark = store.mark_equity(d3, Decimal("97000"))

    assert store.peak_equity() == Decimal("101500.50")
    assert mark.peak_equity == Decimal("101500.50")
    assert mark.start_equity == Decimal("97000")  # a new session starts from its own first mark

    store.mark_equity(d3, Decimal("102000"))
    assert store.peak_equity() == Decimal("102000")


def test_equity_queries(store: StateStore) -> None:
    assert store.peak_equity() is None
    assert store.latest_equity_mark() is None
    assert store.equity_mark(date(2018, 2, 5)) is None
    assert store.equity_curve() == []

    store.mark_equity(date(2018, 2, 5), Decimal("100500"))
    store.mark_equity(date(2018, 2, 2), Decimal("100000"))  # an earlier session marked later
    store.mark_equity(date(2018, 2, 5), Decimal("100700"))

    latest = store.latest_equity_mark()
    assert latest is not None
    assert latest.session == date(2018, 2, 5)
    assert store.equity_curve() == [(date(2018, 2, 2), Decimal("100000")), (date(2018, 2, 5), Decimal("100700"))]
    assert store.peak_equity() == Decimal("100700")


# ----------------------------------------------------------------------------------------------------------------------
# JOURNAL
# ----------------------------------------------------------------------------------------------------------------------


def test_journal_appends_rows_and_counts_by_type(store: StateStore) -> None:
    signal = make_signal()
    store.journal([signal, SignalValidated(ts_event=T0, ts_init=T0, correlation_id="c-AAPL", signal=signal)])
    store.journal([make_signal("MSFT")])
    store.journal([])

    assert store.journal_count() == 3
    assert store.journal_count("SignalGenerated") == 2
    assert store.journal_count("OrderFilled") == 0
    tail = store.journal_tail(2)
    assert [(r["type"], r["correlation_id"]) for r in tail] == [
        ("SignalValidated", "c-AAPL"),
        ("SignalGenerated", "c-MSFT"),
    ]
    assert store.journal_tail(0) == []
    assert len(store.journal_tail(100)) == 3


STATS = IterationStats(
    session=date(2018, 2, 5), bars=505, rejected_bars=1, orders=2, fills=3, equity=Decimal("100000.00"), positions=4
)


def test_journal_payload_serialises_fields_generically(store: StateStore) -> None:
    signal = make_signal(price=float("nan"))
    counts = {"missing_price": 1}
    fill = make_fill()
    events: list[Message] = [
        signal,
        SignalValidated(ts_event=T0, ts_init=T0, correlation_id="c-AAPL", signal=signal),
        OrderSubmitted(
            ts_event=T0,
            ts_init=T0,
            client_order_id="zscore-AAPL-buy-1",
            broker_order_id="b-1",
            symbol="AAPL",
            side=OrderSide.BUY,
            qty=None,
            notional=Decimal("1500.00"),
        ),
        OrderFilled(ts_event=T0, ts_init=T0, fill=fill),
        IterationCompleted(ts_event=T0, ts_init=T0, iteration=7, stats=STATS),
        BarsFetched(ts_event=T0, ts_init=T0, iteration=7, frame=BarFrame.empty(("AAPL",)), new_rows=0, rejected=counts),
    ]
    counts["missing_price"] = 99  # the message holds its own read-only copy
    store.journal(events)

    generated, validated, submitted, filled, completed, fetched = store.journal_tail(6)
    assert validated["id"] == events[1].id
    assert validated["ts_event"] == "2018-02-05T21:00:00.000000+00:00"
    # a message nested in another is journaled on its own and referenced by id
    assert validated["payload"]["signal"] == {"ref": signal.id, "type": "SignalGenerated"}
    nested = generated["payload"]
    assert nested["side"] == "buy"
    assert nested["price"] == "NaN"  # exact money as text: an unusable price stays visibly unusable
    assert datetime.fromisoformat(nested["bar_ts"]) == T0 - timedelta(hours=6, minutes=30)
    assert submitted["payload"]["notional"] == "1500.00"
    assert submitted["payload"]["qty"] is None
    assert filled["payload"]["fill"]["qty"] == "8.851540744"
    assert completed["payload"]["stats"] == {
        "session": "2018-02-05",
        "bars": 505,
        "rejected_bars": 1,
        "orders": 2,
        "fills": 3,
        "equity": "100000.00",
        "positions": 4,
    }
    assert fetched["payload"]["rejected"] == {"missing_price": 1}
    assert "id" not in validated["payload"]  # kept in its own column
    assert datetime.fromisoformat(validated["payload"]["ts_init"]) == T0


def test_journal_records_a_bar_frame_as_a_summary(store: StateStore) -> None:
    frame = BarFrame.empty(("AAPL", "MSFT"))
    store.journal([BarsFetched(ts_event=T0, ts_init=T0, iteration=1, frame=frame, new_rows=0, rejected={})])

    [row] = store.journal_tail(1)
    assert row["payload"]["frame"] == {"symbols": 2, "rows": 0, "last_bar": None}


# ----------------------------------------------------------------------------------------------------------------------
# FLAGS AND SUMMARY
# ----------------------------------------------------------------------------------------------------------------------


def test_flags_set_overwrite_and_clear(store: StateStore) -> None:
    assert store.get_flag("halted") is None
    store.set_flag("halted", "manual")
    store.set_flag("halted", "daily_loss")
    store.set_flag("last_scan_date", "2018-02-05")
    assert store.get_flag("halted") == "daily_loss"

    store.clear_flag("halted")
    store.clear_flag("never_set")
    assert store.get_flag("halted") is None
    assert store.flags() == {"last_scan_date": "2018-02-05"}


def test_summary_counts(store: StateStore) -> None:
    store.upsert_order(make_order("a", status=OrderStatus.NEW))
    store.upsert_order(make_order("b", status=OrderStatus.FILLED))
    store.upsert_order(make_order("c", status=OrderStatus.FILLED))
    store.record_fills([make_fill("x-1"), make_fill("x-2")])
    store.save_positions({"AAPL": Position("AAPL", Decimal(1), Decimal(2), Decimal(3))})
    store.mark_equity(date(2018, 2, 5), Decimal("100000.00"))
    store.set_flag("halted", "manual")

    summary = store.summary()

    assert summary["orders"] == {"total": 3, "open": 1, "by_status": {"filled": 2, "new": 1}}
    assert summary["fills"] == 2
    assert summary["positions"] == 1
    assert summary["last_equity_mark"] == {
        "session": "2018-02-05",
        "start_equity": "100000.00",
        "last_equity": "100000.00",
        "peak_equity": "100000.00",
    }
    assert summary["peak_equity"] == "100000.00"
    assert summary["flags"] == {"halted": "manual"}
    assert summary["schema_version"] == SCHEMA_VERSION


# ----------------------------------------------------------------------------------------------------------------------
# TRANSACTIONS
# ----------------------------------------------------------------------------------------------------------------------


def write_iteration(s: StateStore, n: int = 0) -> None:
    s.upsert_order(make_order(f"o-{n}"), strategy="zscore")
    s.record_fill(make_fill(f"x-{n}"))
    s.save_positions({"AAPL": Position("AAPL", Decimal(n + 1), Decimal("159.54"), Decimal("156.49"))})
    s.mark_equity(date(2018, 2, 5), Decimal(100000 + n))
    s.journal([make_signal()])
    s.set_flag("last_iteration", str(n))


def test_exception_inside_transaction_rolls_back_every_write(store: StateStore) -> None:
    write_iteration(store, 0)
    before = (store.all_orders(), store.fills(), store.load_positions(), store.equity_curve(), store.flags())

    def failing_iteration() -> None:
        with store.transaction():
            write_iteration(store, 1)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing_iteration()

    assert not store.in_transaction
    after = (store.all_orders(), store.fills(), store.load_positions(), store.equity_curve(), store.flags())
    assert after == before
    assert store.journal_count() == 1
    assert store.peak_equity() == Decimal(100000)


def test_transaction_commits_all_writes_together(db_path: Path, store: StateStore) -> None:
    with store.transaction():
        write_iteration(store, 0)
        with StateStore(db_path) as reader:  # another connection sees nothing until COMMIT
            assert reader.all_orders() == []
            assert reader.journal_count() == 0

    with StateStore(db_path) as reader:
        assert [o.client_order_id for o in reader.all_orders()] == ["o-0"]
        assert reader.journal_count() == 1


def test_writes_outside_a_transaction_commit_on_their_own(db_path: Path, store: StateStore) -> None:
    store.set_flag("halted", "manual")
    store.record_fill(make_fill())
    with StateStore(db_path) as reader:
        assert reader.get_flag("halted") == "manual"
        assert len(reader.fills()) == 1


def test_nested_transaction_failure_keeps_the_outer_writes(store: StateStore) -> None:
    def failing_inner() -> None:
        with store.transaction():
            store.set_flag("inner", "1")
            raise KeyError("inner")

    with store.transaction():
        store.set_flag("outer", "1")
        with pytest.raises(KeyError):
            failing_inner()
        store.set_flag("after", "1")

    assert store.flags() == {"after": "1", "outer": "1"}


# ----------------------------------------------------------------------------------------------------------------------
# RESTART
# ----------------------------------------------------------------------------------------------------------------------


def snapshot(s: StateStore) -> tuple[object, ...]:
    return (
        s.all_orders(),
        s.open_orders(),
        [s.order_record(o.client_order_id) for o in s.all_orders()],
        s.fills(),
        s.load_positions(),
        s.equity_curve(),
        s.latest_equity_mark(),
        s.peak_equity(),
        s.journal_tail(1000),
        s.flags(),
        s.summary(),
    )


def test_reopening_restores_everything(db_path: Path) -> None:
    with StateStore(db_path) as s:
        for n in range(3):
            with s.transaction():
                write_iteration(s, n)
        s.upsert_order(make_order("o-1", status=OrderStatus.FILLED, filled_qty=Decimal("9.4")))
        s.mark_equity(date(2018, 2, 6), Decimal("99000.01"))
        before = snapshot(s)

    with StateStore(db_path) as s:
        assert snapshot(s) == before
        # and it keeps working from where it was
        assert s.record_fill(make_fill("x-0")) is False
        assert s.mark_equity(date(2018, 2, 6), Decimal("98000")).start_equity == Decimal("99000.01")


def test_close_is_idempotent(db_path: Path) -> None:
    s = StateStore(db_path)
    s.close()
    s.close()


# ----------------------------------------------------------------------------------------------------------------------
# SPEED
# ----------------------------------------------------------------------------------------------------------------------


def test_one_iteration_of_writes_lands_in_one_transaction(store: StateStore) -> None:
    """The daemon's per-iteration write: a few orders, fills, one equity mark and ~10 journal rows, all or nothing.

    How long it takes is measured by `make bench` (bench_micro), never asserted here.
    """
    iterations = 20
    for n in range(iterations):
        ts = T0 + timedelta(days=n)
        fills = [make_fill(f"x-{n}-{k}", ts=ts) for k in range(3)]
        signal = make_signal()
        events: list[Message] = [signal, SignalValidated(ts_event=ts, ts_init=ts, signal=signal)] * 3
        events += [OrderFilled(ts_event=ts, ts_init=ts, fill=f) for f in fills]
        events.append(IterationCompleted(ts_event=ts, ts_init=ts, iteration=n, stats={"bars": 505}))
        with store.transaction():
            for k in range(3):
                store.upsert_order(make_order(f"o-{n}-{k}", updated_at=ts), strategy="zscore", tier="TIER3")
            store.record_fills(fills)
            store.mark_equity(ts.date(), Decimal("100000.00") + n)
            store.journal(events)

    summary = store.summary()
    assert summary["fills"] == 3 * iterations
    assert summary["orders"]["total"] == 3 * iterations
    assert summary["journal"] == 10 * iterations
    assert summary["last_equity_mark"]["last_equity"] == str(Decimal("100000.00") + iterations - 1)


# ---- listings (`tradingd orders`) ------------------------------------------------------------------------------------


def test_order_records_lists_every_order_in_insertion_order(store: StateStore) -> None:
    store.upsert_order(make_order("c-1", status=OrderStatus.FILLED), strategy="zscore_mr", tier="TIER1")
    store.upsert_order(make_order("c-2", status=OrderStatus.NEW, symbol="MSFT"))
    store.upsert_order(make_order("c-3", status=OrderStatus.CANCELED, reason="expired_at_close"))
    store.upsert_order(make_order("c-1", status=OrderStatus.FILLED))  # an update keeps the first position
    records = store.order_records()
    assert [r.order.client_order_id for r in records] == ["c-1", "c-2", "c-3"]
    assert records[0].strategy == "zscore_mr"
    assert records[0].tier is Tier.TIER1
    assert records[2].order.reason == "expired_at_close"


def test_order_records_filters_by_status(store: StateStore) -> None:
    for n, status in enumerate(OrderStatus):
        store.upsert_order(make_order(f"c-{n}", status=status))
    assert [r.order.status for r in store.order_records({OrderStatus.FILLED})] == [OrderStatus.FILLED]
    opened = store.order_records(OPEN_STATUSES)
    assert [r.order.status for r in opened] == OPEN_STATUSES
    assert [r.order for r in opened] == store.open_orders()
    assert store.order_records(set()) == []


@pytest.mark.parametrize(
    "damage",
    [
        ["CREATE TABLE orders (x)"],  # a sound SQLite file that was never ours
        ["DROP TABLE fills"],  # ours at the current version, but a table is gone
    ],
    ids=["foreign-schema", "missing-table"],
)
def test_a_database_that_is_not_ours_is_set_aside_not_fatal(tmp_path: Path, damage: list[str]) -> None:
    path = tmp_path / "state.db"
    if damage[0].startswith("DROP"):
        with StateStore(path) as store:
            store.set_flag("marker", "old")
    conn = sqlite3.connect(path)
    for statement in damage:
        conn.execute(statement)
    conn.commit()
    conn.close()

    with capture_logs() as logs, StateStore(path) as store:
        assert store.fills() == []
        assert store.get_flag("marker") is None  # a fresh state, not the damaged one
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["state_db_corrupt"]
    assert list(tmp_path.glob("state.db.corrupt-*"))  # set aside, never deleted


def test_last_fill_ts_is_the_latest_fill_time(store: StateStore) -> None:
    assert store.last_fill_ts() is None
    store.record_fills([make_fill("x-late", ts=T0 + timedelta(days=2)), make_fill("x-early", ts=T0)])
    assert store.last_fill_ts() == T0 + timedelta(days=2)
