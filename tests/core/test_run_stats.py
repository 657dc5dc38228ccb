"""Tests for core/run_stats.py: the run summary's counts come from the events alone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from core.bus import EventBus
from core.messages import (
    DataRejected,
    ExitWithheld,
    IterationCompleted,
    IterationStats,
    OrderCanceled,
    OrderDenied,
    OrderFilled,
    OrderRejected,
    OversellDetected,
    SignalGenerated,
    SignalRejected,
    SignalValidated,
    StopCancelRequested,
    StopPlaced,
)
from core.order_ids import protective_stop_id
from core.reasons import (
    CancelReason,
    DenialReason,
    ExitWithheldReason,
    RejectionReason,
    SignalRejectReason,
    StopReason,
)
from core.run_stats import RunStats
from core.types import Fill, OrderSide, OrderType, TimeInForce

T0 = datetime(2017, 7, 3, 20, tzinfo=UTC)
D = Decimal


def _signal(symbol: str) -> SignalGenerated:
    return SignalGenerated(
        ts_event=T0,
        ts_init=T0,
        strategy="zscore_mr",
        symbol=symbol,
        side=OrderSide.BUY,
        is_exit=False,
        price=D(100),
        score=1.0,
        volatility=0.1,
        bar_ts=T0,
        reason="test",
    )


def _completed(iteration: int, bars: int) -> IterationCompleted:
    stats = IterationStats(date(2017, 7, 3), bars, 0, 0, 0, D(0), 0)
    return IterationCompleted(ts_event=T0, ts_init=T0, iteration=iteration, stats=stats)


def test_counts_every_outcome_by_reason_from_the_events() -> None:
    bus = EventBus()
    stats = RunStats.observing(bus)
    aapl, msft = _signal("AAPL"), _signal("MSFT")
    for event in (
        DataRejected(ts_event=T0, ts_init=T0, symbol="DHR", bar_ts=T0, reason="missing_price"),
        aapl,
        msft,
        SignalValidated(ts_event=T0, ts_init=T0, signal=aapl),
        SignalRejected(ts_event=T0, ts_init=T0, signal=msft, reason=SignalRejectReason.STALE_SIGNAL),
        OrderDenied(ts_event=T0, ts_init=T0, signal=aapl, reason=DenialReason.MAX_OPEN_POSITIONS),
        OrderRejected(ts_event=T0, ts_init=T0, client_order_id="c", symbol="X", reason=RejectionReason.REJECTED),
        OrderCanceled(ts_event=T0, ts_init=T0, client_order_id="c", symbol="X", reason=CancelReason.EXPIRED),
        _completed(1, 28),
        _completed(2, 29),
    ):
        bus.publish(event)
    assert (stats.iterations, stats.bars, stats.signals, stats.validated) == (2, 57, 2, 1)
    assert stats.bad_bars == {"missing_price": 1}
    assert stats.rejected == {"stale_signal": 1}
    assert stats.denied == {"max_open_positions": 1}
    assert stats.orders_rejected == {"rejected": 1}
    assert stats.orders_canceled == {"expired": 1}
    assert (stats.approved, stats.orders, stats.fills) == (0, 0, 0)


def test_return_and_drawdown_are_measured_from_the_exact_equity_marks() -> None:
    stats = RunStats()
    for equity in ("100000", "110000", "99000.005", "105000"):
        stats.mark(D(equity))
    assert stats.start_equity == D(100_000)
    assert stats.equity == D(105_000)
    assert stats.peak_equity == D(110_000)
    assert stats.max_drawdown == (D(110_000) - D("99000.005")) / D(110_000)  # not rounded to the cent


def test_protective_stops_are_counted_placed_triggered_once_each_and_by_reason() -> None:
    bus = EventBus()
    stats = RunStats.observing(bus)
    stop = protective_stop_id("AAPL", "td-entry", date(2017, 7, 3), "g", 1)
    bus.publish(
        StopPlaced(
            ts_event=T0, ts_init=T0, client_order_id=stop, broker_order_id="b1", symbol="AAPL", qty=D(10),
            order_type=OrderType.STOP, time_in_force=TimeInForce.GTC, stop_price=D(95), trail_percent=None,
            reason=StopReason.UNCOVERED,
        )
    )  # fmt: skip
    for qty in (D(4), D(6)):  # one stop, filled in two parts: triggered once
        bus.publish(
            OrderFilled(ts_event=T0, ts_init=T0, fill=Fill(f"x{qty}", stop, "AAPL", OrderSide.SELL, qty, D(95), T0))
        )
    bus.publish(
        StopCancelRequested(ts_event=T0, ts_init=T0, client_order_id=stop, symbol="AAPL", reason=StopReason.EXIT)
    )
    bus.publish(
        ExitWithheld(ts_event=T0, ts_init=T0, client_order_id="x", symbol="AAPL", reason=ExitWithheldReason.STOP_FILLED)
    )
    bus.publish(
        OversellDetected(
            ts_event=T0, ts_init=T0, symbol="AAPL", open_sell_qty=D(11), owned_qty=D(10), checked="refresh"
        )
    )
    assert (stats.stops_placed, len(stats.stops_triggered), stats.fills, stats.oversells) == (1, 1, 2, 1)
    assert stats.stop_cancels == {"exit": 1}
    assert stats.exits_withheld == {"stop_filled": 1}
