"""The words of each notification: short titles, one fact per line, amounts as the state DB has them.

A fill line reads `buy AAPL 12 @ 101.23` (side, symbol, quantity, price): the same shape in a single fill's message
and in an iteration's batch, so a person scans it and a test parses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from core.messages import (
    CircuitBreakerTripped,
    DaemonStarted,
    DaemonStopped,
    OrderRejected,
    TradingStateChanged,
)
from core.notify_kinds import NotifyKind
from core.types import Fill, TradingState
from tradingd.notify.notification import Notification

BATCH_ABOVE = 5  # more fills than this in one iteration come as one message listing them all


def _amount(value: Decimal) -> str:
    return f"{value.normalize():f}"


def fill_line(fill: Fill) -> str:
    return f"{fill.side.value} {fill.symbol} {_amount(fill.qty)} @ {_amount(fill.price)}"


def fill_notifications(prefix: str, fills: Sequence[Fill]) -> list[Notification]:
    """One message per fill, or one listing every fill when there are more than `BATCH_ABOVE`."""
    if len(fills) > BATCH_ABOVE:
        body = "\n".join(fill_line(fill) for fill in fills)
        return [Notification(NotifyKind.FILL, f"{prefix}: {len(fills)} fills", body)]
    return [
        Notification(NotifyKind.FILL, f"{prefix}: fill {fill.symbol}", f"{fill_line(fill)}\n{fill.client_order_id}")
        for fill in fills
    ]


def rejected(prefix: str, event: OrderRejected) -> Notification:
    detail = f"\n{event.detail}" if event.detail else ""
    body = f"{event.symbol}: {event.reason.value}{detail}\n{event.client_order_id}"
    return Notification(NotifyKind.REJECTED, f"{prefix}: order rejected ({event.symbol})", body)


def breaker_tripped(prefix: str, event: CircuitBreakerTripped) -> Notification:
    body = f"{event.breaker.value}: {event.detail}\nNew entries are refused; exits and stops go on."
    return Notification(NotifyKind.BREAKER, f"{prefix}: circuit breaker tripped ({event.breaker.value})", body)


def state_entered(prefix: str, event: TradingStateChanged) -> Notification:
    """The kill switch engaged (halted) or reduce-only set."""
    title = f"{prefix}: trading {event.current.value} ({event.reason.value})"
    body = f"{event.previous.value} -> {event.current.value}: {event.detail or event.reason.value}"
    return Notification(NotifyKind.KILL_SWITCH, title, body)


def state_left(prefix: str, kind: NotifyKind, event: TradingStateChanged, was: str) -> Notification:
    """Trading eased: back to active (`cleared`), or from halted to reducing while another cause still holds."""
    if event.current is TradingState.ACTIVE:
        title = f"{prefix}: trading active again"
        body = f"{event.previous.value} -> active: nothing holds trading back now (last cause seen: {was})"
    else:
        title = f"{prefix}: kill switch lifted, still {event.current.value}"
        body = f"{event.previous.value} -> {event.current.value}: {event.detail or event.reason.value}"
    return Notification(kind, title, body)


def daemon_started(prefix: str, event: DaemonStarted) -> Notification:
    if event.unclean_restart:
        body = (
            "The previous daemon of this state did not stop cleanly (killed, crashed or power lost); this start"
            " recovered its orders from the broker. Check the log around the previous run's end."
        )
        return Notification(NotifyKind.UNCLEAN_RESTART, f"{prefix}: restarted after an unclean stop", body)
    return Notification(NotifyKind.DAEMON, f"{prefix}: daemon started", f"mode {event.mode}")


def daemon_stopped(prefix: str, event: DaemonStopped) -> Notification:
    body = f"reason {event.reason}, {event.iterations} iterations"
    return Notification(NotifyKind.DAEMON, f"{prefix}: daemon stopped ({event.reason})", body)


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:.0f} min"


def broker_down(prefix: str, down_for: timedelta, kind: str, detail: str) -> Notification:
    body = f"No tick has reached the broker for {_minutes(down_for)}; the last error: {kind}: {detail}"
    return Notification(NotifyKind.BROKER_DOWN, f"{prefix}: broker unreachable for {_minutes(down_for)}", body)


def broker_back(prefix: str, down_for: timedelta) -> Notification:
    body = f"An iteration completed again after {_minutes(down_for)} without the broker."
    return Notification(NotifyKind.BROKER_DOWN, f"{prefix}: broker reachable again", body)
