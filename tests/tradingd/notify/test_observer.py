"""Events in, notifications out: batching, breakers and the kill switch, the daemon's life, the broker's absence."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from core.bus import EventBus
from core.messages import (
    CircuitBreakerTripped,
    DaemonStarted,
    DaemonStopped,
    IterationCompleted,
    IterationFailed,
    IterationStats,
    OrderFilled,
    OrderRejected,
    TradingStateChanged,
)
from core.notify_kinds import ALL_KINDS, NotifyKind
from core.reasons import Breaker, RejectionReason, TradingStateReason
from core.types import Fill, OrderSide, TradingState
from tradingd.notify.notification import Notification
from tradingd.notify.observer import NotificationObserver

T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)


def _observer(kinds: tuple[NotifyKind, ...] = ALL_KINDS) -> tuple[EventBus, list[Notification]]:
    bus = EventBus()
    sent: list[Notification] = []
    NotificationObserver(bus, sent.append, kinds=kinds, mode="paper", broker_down_after=timedelta(minutes=5))
    return bus, sent


def _fill(index: int, side: OrderSide = OrderSide.BUY) -> OrderFilled:
    fill = Fill(f"x{index}", f"td-{index}", f"S{index}", side, Decimal("1.50"), Decimal("100.25"), T0)
    return OrderFilled(ts_event=T0, ts_init=T0, fill=fill)


def _completed(at: datetime = T0, iteration: int = 1) -> IterationCompleted:
    stats = IterationStats(date(2024, 3, 4), 10, 0, 0, 0, Decimal(100_000), 0)
    return IterationCompleted(ts_event=at, ts_init=at, iteration=iteration, stats=stats)


def _state(previous: TradingState, current: TradingState, reason: TradingStateReason) -> TradingStateChanged:
    return TradingStateChanged(ts_event=T0, ts_init=T0, previous=previous, current=current, reason=reason)


def test_up_to_five_fills_are_one_message_each_sent_when_the_iteration_completes() -> None:
    bus, sent = _observer()
    for index in range(5):
        bus.publish(_fill(index))
    assert sent == []  # nothing before the iteration's end
    bus.publish(_completed())
    assert [n.kind for n in sent] == [NotifyKind.FILL] * 5
    assert sent[0].body.splitlines()[0] == "buy S0 1.5 @ 100.25"


def test_more_than_five_fills_are_one_message_listing_every_fill() -> None:
    bus, sent = _observer()
    for index in range(7):
        bus.publish(_fill(index, OrderSide.SELL if index % 2 else OrderSide.BUY))
    bus.publish(_completed())
    assert len(sent) == 1
    assert sent[0].title == "tradingd paper: 7 fills"
    lines = sent[0].body.splitlines()
    assert len(lines) == 7
    assert lines[1] == "sell S1 1.5 @ 100.25"


def test_rejections_and_breaker_trips_are_one_message_each() -> None:
    bus, sent = _observer()
    bus.publish(
        OrderRejected(
            ts_event=T0,
            ts_init=T0,
            client_order_id="td-1",
            symbol="AAPL",
            reason=RejectionReason.INSUFFICIENT_BUYING_POWER,
            detail="cash",
        )
    )
    bus.publish(CircuitBreakerTripped(ts_event=T0, ts_init=T0, breaker=Breaker.MAX_DRAWDOWN, detail="10% below peak"))
    bus.publish(_state(TradingState.ACTIVE, TradingState.REDUCING, TradingStateReason.MAX_DRAWDOWN))
    assert [n.kind for n in sent] == [NotifyKind.REJECTED, NotifyKind.BREAKER]  # the state change adds nothing
    assert "insufficient_buying_power" in sent[0].body
    assert "max_drawdown" in sent[1].title


def test_cleared_says_what_cleared_a_breaker_or_the_kill_switch() -> None:
    bus, sent = _observer()
    bus.publish(_state(TradingState.ACTIVE, TradingState.REDUCING, TradingStateReason.DAILY_LOSS_LIMIT))
    bus.publish(_state(TradingState.REDUCING, TradingState.ACTIVE, TradingStateReason.CLEARED))
    bus.publish(_state(TradingState.ACTIVE, TradingState.HALTED, TradingStateReason.HALTED))
    bus.publish(_state(TradingState.HALTED, TradingState.ACTIVE, TradingStateReason.CLEARED))
    assert [(n.kind, n.title) for n in sent] == [
        (NotifyKind.BREAKER, "tradingd paper: trading active again"),
        (NotifyKind.KILL_SWITCH, "tradingd paper: trading halted (halted)"),
        (NotifyKind.KILL_SWITCH, "tradingd paper: trading active again"),
    ]
    assert "(last cause seen: daily_loss_limit)" in sent[0].body
    assert "(last cause seen: halted)" in sent[2].body


def test_kinds_not_chosen_are_not_sent() -> None:
    bus, sent = _observer(kinds=(NotifyKind.BREAKER,))
    bus.publish(_fill(1))
    bus.publish(_completed())
    bus.publish(_state(TradingState.ACTIVE, TradingState.HALTED, TradingStateReason.HALTED))
    bus.publish(DaemonStarted(ts_event=T0, ts_init=T0, mode="paper", unclean_restart=False))
    assert sent == []


def test_daemon_start_stop_and_the_unclean_restart() -> None:
    bus, sent = _observer()
    bus.publish(DaemonStarted(ts_event=T0, ts_init=T0, mode="paper", unclean_restart=True))
    bus.publish(_fill(1))  # a fill of a tick that never completed still goes out at the stop
    bus.publish(DaemonStopped(ts_event=T0, ts_init=T0, mode="paper", reason="signal", iterations=3))
    assert [n.kind for n in sent] == [NotifyKind.UNCLEAN_RESTART, NotifyKind.FILL, NotifyKind.DAEMON]
    assert sent[0].title == "tradingd paper: restarted after an unclean stop"
    assert sent[2].title == "tradingd paper: daemon stopped (signal)"
    # With unclean_restart off, the same start is an ordinary "started".
    bus, sent = _observer(kinds=(NotifyKind.DAEMON,))
    bus.publish(DaemonStarted(ts_event=T0, ts_init=T0, mode="paper", unclean_restart=True))
    assert [n.title for n in sent] == ["tradingd paper: daemon started"]


def _failed(at: datetime) -> IterationFailed:
    return IterationFailed(ts_event=at, ts_init=at, tick="iterate", kind="TransientBrokerError", detail="503")


def test_broker_down_once_past_the_threshold_and_back_once() -> None:
    bus, sent = _observer()
    for minute in (0, 1, 4):
        bus.publish(_failed(T0 + timedelta(minutes=minute)))
    assert sent == []  # 4 minutes: under the threshold
    for minute in (5, 6, 7):
        bus.publish(_failed(T0 + timedelta(minutes=minute)))
    assert [n.title for n in sent] == ["tradingd paper: broker unreachable for 5 min"]
    assert "TransientBrokerError: 503" in sent[0].body
    bus.publish(_completed(T0 + timedelta(minutes=9)))
    assert sent[-1].title == "tradingd paper: broker reachable again"
    assert "9 min" in sent[-1].body
    bus.publish(_completed(T0 + timedelta(minutes=10)))
    assert len(sent) == 2


def test_a_short_outage_says_nothing() -> None:
    bus, sent = _observer()
    bus.publish(_failed(T0))
    bus.publish(_failed(T0 + timedelta(minutes=2)))
    bus.publish(_completed(T0 + timedelta(minutes=3)))
    bus.publish(_failed(T0 + timedelta(minutes=4)))
    bus.publish(_failed(T0 + timedelta(minutes=8)))  # a new outage counts from its own start
    assert sent == []
