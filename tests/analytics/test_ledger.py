"""The round-trip ledger: FIFO lots, one trip per (entry order, exit order) pair, exit reasons, open lots."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from analytics.ledger import OrderTags, build_ledger
from analytics.model import ExitReason
from core.types import Fill, OrderSide, Tier

D = Decimal
T0 = datetime(2016, 1, 4, 14, 30, tzinfo=UTC)


def fill(n: int, order: str, side: OrderSide, qty: str, price: str, symbol: str = "AAPL", day: int = 0) -> Fill:
    return Fill(f"{order}-{n}", order, symbol, side, D(qty), D(price), T0 + timedelta(days=day))


BUY, SELL = OrderSide.BUY, OrderSide.SELL
TAGS = {
    "b1": OrderTags("zscore_mr", Tier.TIER1),
    "b2": OrderTags("zscore_mr", Tier.TIER2),
    "s1": OrderTags("zscore_mr", Tier.TIER1),
    "s2": OrderTags("ps", Tier.TIER1),
    "s3": OrderTags("flatten", None),
}


def test_scaling_in_and_partial_exits_match_fifo_one_trip_per_order_pair() -> None:
    fills = [
        fill(1, "b1", BUY, "10", "100", day=0),
        fill(1, "b2", BUY, "10", "110", day=1),  # scaling in
        fill(1, "s1", SELL, "15", "120", day=3),  # all of b1, half of b2
        fill(1, "s2", SELL, "5", "90", day=5),  # the rest of b2, at a stop
    ]
    ledger = build_ledger(fills, TAGS)
    assert [(t.entry_order_id, t.exit_order_id, t.qty) for t in ledger.trips] == [
        ("b1", "s1", D(10)),
        ("b2", "s1", D(5)),
        ("b2", "s2", D(5)),
    ]
    first, second, third = ledger.trips
    assert first.pnl == D(200)
    assert first.pnl_pct == 20.0
    assert first.days_held == 3.0
    assert second.pnl == D(50)
    assert second.tier is Tier.TIER2
    assert second.exit_reason is ExitReason.SIGNAL
    assert third.pnl == D(-100)
    assert third.exit_reason is ExitReason.STOP_LOSS
    assert third.days_held == 4.0
    assert ledger.open_lots == ()
    assert ledger.unmatched_sell_qty == 0


def test_partial_fills_of_one_order_add_up_into_one_trip_with_weighted_prices() -> None:
    fills = [
        fill(1, "b1", BUY, "4", "100", day=0),
        fill(2, "b1", BUY, "6", "105", day=0),
        fill(1, "s3", SELL, "3", "111", day=2),
        fill(2, "s3", SELL, "7", "101", day=2),
    ]
    (trip,) = build_ledger(fills, TAGS).trips
    assert trip.qty == D(10)
    assert trip.entry_price == D("103")  # (4*100 + 6*105) / 10
    assert trip.exit_price == D("104")  # (3*111 + 7*101) / 10
    assert trip.pnl == D(10)
    assert trip.exit_reason is ExitReason.BREAKER


def test_open_lots_are_left_out_and_sells_without_buys_counted() -> None:
    fills = [
        fill(1, "b1", BUY, "10", "100", day=0),
        fill(1, "s1", SELL, "4", "101", day=1),
        fill(1, "s9", SELL, "2", "50", symbol="MSFT", day=1),  # a position older than the store
    ]
    ledger = build_ledger(fills, TAGS)
    assert [t.qty for t in ledger.trips] == [D(4)]
    (lot,) = ledger.open_lots
    assert (lot.symbol, lot.qty, lot.entry_order_id) == ("AAPL", D(6), "b1")
    assert ledger.unmatched_sell_qty == D(2)


def test_the_exit_reason_stored_with_the_order_decides_and_an_old_row_falls_back_to_its_tag() -> None:
    tags = {
        "b1": OrderTags("zscore_mr", Tier.TIER1),
        "s-close-stop": OrderTags("zscore_mr", Tier.TIER1, ExitReason.STOP_LOSS),  # STOP_MODE=close's stop-loss
        "s-old": OrderTags("flatten", Tier.TIER1),  # written before schema 5: no reason stored
    }
    fills = [
        fill(1, "b1", BUY, "10", "100"),
        fill(1, "s-close-stop", SELL, "4", "90", day=1),
        fill(1, "s-old", SELL, "3", "95", day=2),
        fill(1, "s-outside", SELL, "3", "96", day=3),  # a sell the store has no row for
    ]
    reasons = [trip.exit_reason for trip in build_ledger(fills, tags).trips]
    assert reasons == [ExitReason.STOP_LOSS, ExitReason.BREAKER, ExitReason.MANUAL]


def _fifo_reference(fills: list[Fill]) -> tuple[Decimal, dict[str, Decimal]]:
    """Realised P&L by the textbook FIFO: a queue of (qty, price) per symbol, share by share in spirit."""
    queues: dict[str, deque[list[Decimal]]] = {}
    realised = D(0)
    bought: dict[str, Decimal] = {}
    for f in fills:
        queue = queues.setdefault(f.symbol, deque())
        if f.side is BUY:
            queue.append([f.qty, f.price])
            bought[f.symbol] = bought.get(f.symbol, D(0)) + f.qty
            continue
        left = f.qty
        while left and queue:
            take = min(left, queue[0][0])
            realised += take * (f.price - queue[0][1])
            queue[0][0] -= take
            left -= take
            if not queue[0][0]:
                queue.popleft()
    return realised, bought


_steps = st.lists(
    st.tuples(
        st.sampled_from(["AAPL", "MSFT"]),
        st.sampled_from([BUY, SELL]),
        st.integers(min_value=1, max_value=50),
        st.integers(min_value=50, max_value=150),
        st.integers(min_value=0, max_value=3),  # the order: several fills may share one
    ),
    max_size=40,
)


@given(_steps)
def test_matched_qty_never_exceeds_bought_and_pnl_equals_the_fifo_reference(
    steps: list[tuple[str, OrderSide, int, int, int]],
) -> None:
    fills = [
        Fill(f"x{i}", f"{side.value}-{symbol}-{order}", symbol, side, D(qty), D(price), T0 + timedelta(hours=i))
        for i, (symbol, side, qty, price, order) in enumerate(steps)
    ]
    ledger = build_ledger(fills, {})
    realised, bought = _fifo_reference(fills)
    assert sum((t.pnl for t in ledger.trips), D(0)) == realised
    for symbol, qty in bought.items():
        matched = sum((t.qty for t in ledger.trips if t.symbol == symbol), D(0))
        still_open = sum((lot.qty for lot in ledger.open_lots if lot.symbol == symbol), D(0))
        assert matched <= qty
        assert matched + still_open == qty
    assert [t.exit_time for t in ledger.trips] == sorted(t.exit_time for t in ledger.trips)
