"""The bus observer: events in, formatted notifications onto the sender's queue. It never blocks `publish`: each
handler formats a few lines and calls `submit`, which only enqueues.

What it remembers between events, and why:
- the fills of the current iteration (published one by one during the tick), sent when the iteration completes
  (or the next one starts, for the fills of a stop-only tick), one message each or one listing all above 5;
- the cause of the last non-active trading state, so `cleared` can say what cleared (a breaker or the kill switch);
- when the broker first failed (`IterationFailed`, the daemon's clock): past NOTIFY_BROKER_DOWN_MINUTES one message,
  and one when an iteration completes again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime, timedelta

from core.bus import EventBus
from core.messages import (
    CircuitBreakerTripped,
    DaemonStarted,
    DaemonStopped,
    IterationCompleted,
    IterationFailed,
    IterationStarted,
    OrderFilled,
    OrderRejected,
    SessionClosed,
    TradingStateChanged,
)
from core.notify_kinds import NotifyKind
from core.reasons import TradingStateReason
from core.types import Fill, TradingState
from tradingd.notify import formatting
from tradingd.notify.digest import DigestBuilder
from tradingd.notify.notification import Notification

_KILL_SWITCH_CAUSES = frozenset({TradingStateReason.HALTED, TradingStateReason.REDUCE_ONLY})
_BREAKER_CAUSES = frozenset({TradingStateReason.DAILY_LOSS_LIMIT, TradingStateReason.MAX_DRAWDOWN})


class NotificationObserver:
    def __init__(
        self,
        bus: EventBus,
        submit: Callable[[Notification], None],
        *,
        kinds: Collection[NotifyKind],
        mode: str,
        broker_down_after: timedelta,
        digest: DigestBuilder | None = None,
        chart_last_digest_only: bool = False,
    ) -> None:
        """`chart_last_digest_only` (sim): each digest is held until the next one, which sends it without its chart;
        the stop sends the last with it. A replay makes a digest per session, many a second: one chart (~0.1 s of
        matplotlib, ~0.5 s with its import), drawn after the loop, instead of one per session during it."""
        self._submit = submit
        self._kinds = frozenset(kinds)
        self._prefix = f"tradingd {mode}"
        self._broker_down_after = broker_down_after
        self._digest = digest
        self._chart_last_only = chart_last_digest_only
        self._held_digest: Notification | None = None
        self._fills: list[Fill] = []
        self._cause: TradingStateReason | None = None
        self._down_since: datetime | None = None
        self._down_announced = False
        self._subscribe(bus)

    def _subscribe(self, bus: EventBus) -> None:
        # Only what the chosen kinds need: a replay with fills off pays nothing per fill.
        on = self._kinds.__contains__
        if on(NotifyKind.FILL):
            bus.subscribe(OrderFilled, self._on_fill)
            bus.subscribe(IterationStarted, self._on_iteration_started)
        if on(NotifyKind.FILL) or on(NotifyKind.BROKER_DOWN):
            bus.subscribe(IterationCompleted, self._on_iteration_completed)
        if on(NotifyKind.REJECTED):
            bus.subscribe(OrderRejected, self._on_rejected)
        if on(NotifyKind.BREAKER):
            bus.subscribe(CircuitBreakerTripped, self._on_breaker)
        if on(NotifyKind.BREAKER) or on(NotifyKind.KILL_SWITCH):
            bus.subscribe(TradingStateChanged, self._on_state)
        if on(NotifyKind.DAEMON) or on(NotifyKind.UNCLEAN_RESTART):
            bus.subscribe(DaemonStarted, self._on_started)
        bus.subscribe(DaemonStopped, self._on_stopped)  # also the last chance to send the buffered fills
        if on(NotifyKind.BROKER_DOWN):
            bus.subscribe(IterationFailed, self._on_failed)
        if on(NotifyKind.DIGEST) and self._digest is not None:
            bus.subscribe(SessionClosed, self._on_session_closed)

    def _send(self, notification: Notification) -> None:
        if notification.kind in self._kinds:
            self._submit(notification)

    # -- fills ----------------------------------------------------------------------------------------------------
    def _on_fill(self, event: OrderFilled) -> None:
        self._fills.append(event.fill)

    def _flush_fills(self) -> None:
        if self._fills:
            fills, self._fills = self._fills, []
            for notification in formatting.fill_notifications(self._prefix, fills):
                self._send(notification)

    def _on_iteration_started(self, _event: IterationStarted) -> None:
        self._flush_fills()  # fills of a stop-only tick since the last iteration

    def _on_iteration_completed(self, event: IterationCompleted) -> None:
        self._flush_fills()
        if self._down_since is not None:
            if self._down_announced:
                self._send(formatting.broker_back(self._prefix, event.ts_event - self._down_since))
            self._down_since, self._down_announced = None, False

    # -- orders and risk ------------------------------------------------------------------------------------------
    def _on_rejected(self, event: OrderRejected) -> None:
        self._send(formatting.rejected(self._prefix, event))

    def _on_breaker(self, event: CircuitBreakerTripped) -> None:
        self._send(formatting.breaker_tripped(self._prefix, event))

    def _on_state(self, event: TradingStateChanged) -> None:
        previous_cause, self._cause = self._cause, event.reason
        if event.current is TradingState.ACTIVE:
            # What cleared: the cause seen last (unknown when the daemon started in that state: then its state says
            # the likelier one, halted being the kill switch's).
            was = previous_cause
            if was is None and event.previous is TradingState.HALTED:
                was = TradingStateReason.HALTED
            kind = NotifyKind.KILL_SWITCH if was in _KILL_SWITCH_CAUSES else NotifyKind.BREAKER
            self._send(formatting.state_left(self._prefix, kind, event, was.value if was else event.previous.value))
        elif event.reason in _KILL_SWITCH_CAUSES:
            self._send(formatting.state_entered(self._prefix, event))
        elif event.previous is TradingState.HALTED:
            self._send(formatting.state_left(self._prefix, NotifyKind.KILL_SWITCH, event, TradingStateReason.HALTED))
        # A breaker's own state change says nothing CircuitBreakerTripped has not said.

    # -- the daemon -----------------------------------------------------------------------------------------------
    def _on_started(self, event: DaemonStarted) -> None:
        notification = formatting.daemon_started(self._prefix, event)
        if notification.kind not in self._kinds:  # an unclean restart with that kind off still says "started"
            notification = formatting.daemon_started(self._prefix, _clean(event))
        self._send(notification)

    def _on_stopped(self, event: DaemonStopped) -> None:
        self._flush_fills()
        if self._held_digest is not None:  # the replay's last digest, with the chart the others went without
            chart = self._digest.chart() if self._digest is not None else None
            self._send(replace(self._held_digest, chart=chart))
            self._held_digest = None
        self._send(formatting.daemon_stopped(self._prefix, event))

    def _on_failed(self, event: IterationFailed) -> None:
        if self._down_since is None:
            self._down_since = event.ts_event
            return
        down_for = event.ts_event - self._down_since
        if not self._down_announced and down_for >= self._broker_down_after:
            self._down_announced = True
            self._send(formatting.broker_down(self._prefix, down_for, event.kind, event.detail))

    # -- the digest -----------------------------------------------------------------------------------------------
    def _on_session_closed(self, event: SessionClosed) -> None:
        assert self._digest is not None  # subscribed only with one
        self._flush_fills()
        if not self._chart_last_only:
            self._send(self._digest.build(event.session))
            return
        if self._held_digest is not None:
            self._send(self._held_digest)  # built without its chart
        self._held_digest = self._digest.build(event.session, with_chart=False)


def _clean(event: DaemonStarted) -> DaemonStarted:
    return DaemonStarted(ts_event=event.ts_event, ts_init=event.ts_init, mode=event.mode, unclean_restart=False)
