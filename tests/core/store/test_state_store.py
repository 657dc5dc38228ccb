"""StateStore: one connection and one transaction over every part, what `tradingd status` sees, and a restart."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.messages import IterationCompleted, Message, OrderFilled, SignalValidated
from core.store import SCHEMA_VERSION, StateStore
from core.types import OrderStatus, Position
from tests.core.store.records import T0, make_fill, make_order, make_signal
from tests.state_db import equity_curve, journal_rows

# ----------------------------------------------------------------------------------------------------------------------
# SUMMARY
# ----------------------------------------------------------------------------------------------------------------------


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


def everything(s: StateStore) -> tuple[object, ...]:
    """What the store holds, as its readers see it (the summary covers flags, the journal and the equity peak)."""
    return (s.order_records(), s.fills(), s.load_positions(), equity_curve(s.path), s.summary())


def test_exception_inside_transaction_rolls_back_every_write(store: StateStore) -> None:
    write_iteration(store, 0)
    before = everything(store)

    def failing_iteration() -> None:
        with store.transaction():
            write_iteration(store, 1)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing_iteration()

    assert everything(store) == before
    assert store.summary()["journal"] == 1
    assert store.summary()["peak_equity"] == "100000"
    store.set_flag("after", "1")  # the transaction is over: a write commits on its own again
    with StateStore(store.path) as reader:
        assert reader.get_flag("after") == "1"


def test_transaction_commits_all_writes_together(db_path: Path, store: StateStore) -> None:
    with store.transaction():
        write_iteration(store, 0)
        with StateStore(db_path) as reader:  # another connection sees nothing until COMMIT
            assert reader.order_records() == []
            assert reader.summary()["journal"] == 0

    with StateStore(db_path) as reader:
        assert [r.order.client_order_id for r in reader.order_records()] == ["o-0"]
        assert reader.summary()["journal"] == 1


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

    assert store.summary()["flags"] == {"after": "1", "outer": "1"}


# ----------------------------------------------------------------------------------------------------------------------
# RESTART
# ----------------------------------------------------------------------------------------------------------------------


def snapshot(s: StateStore) -> tuple[object, ...]:
    return (
        s.order_records(),
        s.open_orders(),
        [s.order_record(r.order.client_order_id) for r in s.order_records()],
        s.fills(),
        s.load_positions(),
        equity_curve(s.path),
        s.latest_equity_mark(),
        journal_rows(s.path),
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
