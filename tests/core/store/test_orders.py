"""Orders and fills: what the store keeps of every order the daemon placed and every execution it saw."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from core.store import StateStore
from core.types import BrokerOrder, OrderSide, OrderStatus, OrderType, Tier, TimeInForce
from tests.core.store.records import FINAL_STATUSES, OPEN_STATUSES, T0, make_fill, make_order

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


def stop_order(
    coid: str = "td-ps-AAPL-g1", *, status: OrderStatus = OrderStatus.ACCEPTED, stop_price: str | None = "142.50"
) -> BrokerOrder:
    return make_order(
        coid,
        status=status,
        side=OrderSide.SELL,
        qty=Decimal(191),
        notional=None,
        order_type=OrderType.STOP,
        time_in_force=TimeInForce.GTC,
        stop_price=None if stop_price is None else Decimal(stop_price),
    )


@pytest.mark.parametrize(
    "order",
    [
        stop_order(),
        make_order(
            "td-ps-AAPL-d1",
            side=OrderSide.SELL,
            qty=Decimal("0.75"),
            notional=None,
            order_type=OrderType.STOP,
            stop_price=Decimal("0.5005"),
        ),
        make_order(
            "td-ps-AAPL-g2",
            side=OrderSide.SELL,
            qty=Decimal(10),
            notional=None,
            order_type=OrderType.TRAILING_STOP,
            time_in_force=TimeInForce.GTC,
            stop_price=Decimal("168.3405"),
            trail_percent=Decimal("5.0"),
        ),
    ],
    ids=["gtc-stop", "day-fractional-stop", "trailing-stop"],
)
def test_a_stop_round_trips_with_its_type_time_in_force_and_prices(store: StateStore, order: BrokerOrder) -> None:
    store.upsert_order(order, strategy="ps")

    assert store.get_order(order.client_order_id) == order
    assert store.open_orders() == [order]
    assert [o.is_stop for o in store.open_orders()] == [True]


def test_a_trailing_stops_level_follows_its_updates_and_an_update_without_one_keeps_the_last(
    store: StateStore,
) -> None:
    store.upsert_order(stop_order(stop_price="140.00"))
    store.upsert_order(stop_order(stop_price="141.25"))
    assert (got := store.get_order("td-ps-AAPL-g1")) is not None
    assert got.stop_price == Decimal("141.25")

    store.upsert_order(stop_order(status=OrderStatus.CANCELED, stop_price=None))

    assert (got := store.get_order("td-ps-AAPL-g1")) is not None
    assert (got.status, got.stop_price, got.order_type, got.time_in_force) == (
        OrderStatus.CANCELED,
        Decimal("141.25"),
        OrderType.STOP,
        TimeInForce.GTC,
    )


def test_unknown_order_is_none(store: StateStore) -> None:
    assert store.get_order("nope") is None
    assert store.order_record("nope") is None


def test_open_orders_are_those_with_an_open_status(store: StateStore) -> None:
    for i, status in enumerate(OrderStatus):
        store.upsert_order(make_order(f"o-{i}", status=status))

    assert [o.status for o in store.open_orders()] == OPEN_STATUSES
    assert [r.order.status for r in store.order_records()] == list(OrderStatus)


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


def test_last_fill_ts_is_the_latest_fill_time(store: StateStore) -> None:
    assert store.last_fill_ts() is None
    store.record_fills([make_fill("x-late", ts=T0 + timedelta(days=2)), make_fill("x-early", ts=T0)])
    assert store.last_fill_ts() == T0 + timedelta(days=2)


# ----------------------------------------------------------------------------------------------------------------------
# BATCHES (the write-ahead rows and the broker's answers of a whole step, one statement each)
# ----------------------------------------------------------------------------------------------------------------------


def test_a_batch_applies_its_rows_in_order_and_never_reopens_a_final_order(store: StateStore) -> None:
    store.upsert_orders(
        [
            make_order("a", status=OrderStatus.PENDING_SUBMIT, broker_order_id=""),
            make_order("b", status=OrderStatus.PENDING_SUBMIT, broker_order_id=""),
        ],
        info=[("zscore", Tier.TIER1, T0), ("ps", None, None)],
    )
    store.upsert_orders(
        [
            make_order("a", status=OrderStatus.NEW, broker_order_id="b-a"),
            make_order("a", status=OrderStatus.FILLED, broker_order_id="b-a", filled_qty=Decimal(3)),
            make_order("a", status=OrderStatus.NEW, broker_order_id="b-a"),  # stale: the fill stands
            make_order("b", status=OrderStatus.EXPIRED, broker_order_id="b-b"),
        ]
    )

    a, b = store.order_record("a"), store.order_record("b")
    assert a is not None
    assert b is not None
    assert (a.order.status, a.order.filled_qty, a.order.broker_order_id) == (OrderStatus.FILLED, Decimal(3), "b-a")
    assert (a.strategy, a.tier, a.signal_bar_ts) == ("zscore", Tier.TIER1, T0)  # kept from the write-ahead row
    assert (b.order.status, b.strategy) == (OrderStatus.EXPIRED, "ps")


def test_a_batch_is_what_one_upsert_per_order_writes(store: StateStore, tmp_path: Path) -> None:
    orders = [make_order(f"o{i}", status=OrderStatus.NEW, updated_at=T0 + timedelta(seconds=i)) for i in range(5)]
    other = StateStore(tmp_path / "one_by_one.db")
    try:
        store.upsert_orders(orders, strategy="zscore")
        for order in orders:
            other.upsert_order(order, strategy="zscore")
        assert store.order_records() == other.order_records()
    finally:
        other.close()


def test_an_empty_batch_writes_nothing(store: StateStore) -> None:
    store.upsert_orders([])
    assert store.order_records() == []


def test_has_order_says_whether_an_id_was_ever_stored(store: StateStore) -> None:
    assert not store.has_order("a")
    store.upsert_order(make_order("a", status=OrderStatus.CANCELED))
    assert store.has_order("a")
    assert not store.has_order("A")


def test_known_order_ids_answers_a_whole_batch_in_chunks(store: StateStore) -> None:
    stored = [f"o{i}" for i in range(0, 1200, 3)]  # more ids than one IN (...) query takes
    store.upsert_orders([make_order(coid) for coid in stored])
    asked = [f"o{i}" for i in range(1200)] + ["o0", "O3"]  # a repeated id, and case matters
    assert store.known_order_ids(asked) == set(stored)
    assert store.known_order_ids([]) == set()
    assert store.known_order_ids(asked) == {coid for coid in asked if store.has_order(coid)}  # has_order of many
