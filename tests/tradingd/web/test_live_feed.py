"""`LiveFeed`: compact JSON of the daemon's events with sequence numbers, bounded, resumable, published inline."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

from core.bus import EventBus
from core.messages import (
    CircuitBreakerTripped,
    IterationCompleted,
    IterationFailed,
    IterationStarted,
    IterationStats,
    OrderFilled,
    TradingStateChanged,
)
from core.reasons import Breaker, TradingStateReason
from core.redact import clear_secrets, register_secrets
from core.types import Fill, OrderSide, TradingState
from tradingd.web.health import HealthMonitor
from tradingd.web.live_feed import LiveFeed

NOW = datetime(2015, 1, 2, 21, tzinfo=UTC)


def _completed(n: int) -> IterationCompleted:
    stats = IterationStats(
        session=date(2015, 1, 2), bars=5, rejected_bars=0, orders=1, fills=1, equity=Decimal("100.5"), positions=1
    )
    return IterationCompleted(ts_event=NOW, ts_init=NOW, iteration=n, stats=stats)


def test_events_in_order_with_sequence_numbers() -> None:
    bus, feed = EventBus(), LiveFeed()
    feed.attach(bus)
    fill = Fill("e1", "c1", "AAPL", OrderSide.BUY, Decimal("2"), Decimal("110.25"), NOW)
    bus.publish(IterationStarted(ts_event=NOW, ts_init=NOW, iteration=1, n_symbols=5))  # not a feed event
    bus.publish(OrderFilled(ts_event=NOW, ts_init=NOW, fill=fill))
    bus.publish(_completed(1))
    events, gap = feed.after(0)
    assert not gap
    assert [(e.seq, e.kind) for e in events] == [(1, "OrderFilled"), (2, "IterationCompleted")]
    filled = json.loads(events[0].data)
    assert filled == {
        "seq": 1,
        "type": "OrderFilled",
        "ts": NOW.isoformat(),
        "symbol": "AAPL",
        "side": "buy",
        "qty": "2",
        "price": "110.25",
        "fill_ts": NOW.isoformat(),
        "client_order_id": "c1",
    }
    assert json.loads(events[1].data)["equity"] == "100.5"
    assert feed.after(1)[0] == events[1:]


def test_bounded_buffer_reports_the_gap() -> None:
    feed = LiveFeed(capacity=3)
    for n in range(10):
        feed.add("IterationCompleted", {"iteration": n})
    events, gap = feed.after(2)
    assert gap  # events 3-7 are gone: the client reloads everything
    assert [e.seq for e in events] == [8, 9, 10]
    assert feed.after(8) == (events[1:], False)


def test_failure_details_are_masked_and_health_follows() -> None:
    register_secrets("SECRETKEY-abcdef")
    try:
        bus, feed, health = EventBus(), LiveFeed(), HealthMonitor()
        feed.attach(bus)
        health.attach(bus)
        bus.publish(_completed(7))
        assert health.snapshot().last_iteration == 7
        assert health.snapshot().last_error is None
        failed = IterationFailed(
            ts_event=NOW, ts_init=NOW, tick="iterate", kind="BrokerError", detail="SECRETKEY-abcdef"
        )
        bus.publish(failed)
        assert "SECRETKEY" not in feed.after(0)[0][-1].data
        assert health.snapshot().last_error == "BrokerError: ***"
        bus.publish(_completed(8))
        assert health.snapshot().last_error is None
    finally:
        clear_secrets()


def test_every_string_leaving_the_feed_is_masked() -> None:
    """SSE bypasses the JSON masking middleware: state changes and breaker details are masked in the feed itself."""
    register_secrets("SECRETKEY-abcdef")
    try:
        bus, feed = EventBus(), LiveFeed()
        feed.attach(bus)
        bus.publish(
            TradingStateChanged(
                ts_event=NOW,
                ts_init=NOW,
                previous=TradingState.ACTIVE,
                current=TradingState.HALTED,
                reason=TradingStateReason.HALTED,
                detail="halted: SECRETKEY-abcdef",
            )
        )
        bus.publish(
            CircuitBreakerTripped(
                ts_event=NOW, ts_init=NOW, breaker=Breaker.DAILY_LOSS_LIMIT, detail="SECRETKEY-abcdef"
            )
        )
        feed.add("Custom", {"nested": {"text": "SECRETKEY-abcdef"}})
        events = feed.after(0)[0]
        assert len(events) == 3
        assert not [event.data for event in events if "SECRETKEY" in event.data]
        assert json.loads(events[0].data)["detail"] == "halted: ***"
    finally:
        clear_secrets()
