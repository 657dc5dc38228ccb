"""What a run did, for its summary (`tradingd run`/`replay`): an observer of the bus.

Every count comes from the events the stages publish, so no one reads counters off the agents. Two figures are not
events and are reported by the orchestrator: the exact equity of each iteration (`IterationCompleted` carries it
rounded to the cent) and the iterations a broker error cut short.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from core.bus import EventBus
from core.messages import (
    DataRejected,
    ExitWithheld,
    IterationCompleted,
    OrderApproved,
    OrderCanceled,
    OrderDenied,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    OversellDetected,
    SignalGenerated,
    SignalRejected,
    SignalValidated,
    StopCancelRequested,
    StopDenied,
    StopPlaced,
)
from core.order_ids import is_protective_stop_id


class _WithReason(Protocol):
    @property
    def reason(self) -> str: ...


def _by_reason(counts: Counter[str]) -> Callable[[_WithReason], None]:
    def count(event: _WithReason) -> None:
        counts[event.reason] += 1

    return count


@dataclass
class RunStats:
    iterations: int = 0
    bars: int = 0
    bad_bars: Counter[str] = field(default_factory=Counter)  # DataRejected by reason
    signals: int = 0
    validated: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # SignalRejected by reason
    approved: int = 0
    denied: Counter[str] = field(default_factory=Counter)  # OrderDenied by reason
    orders: int = 0  # accepted by the broker (OrderSubmitted)
    orders_rejected: Counter[str] = field(default_factory=Counter)
    orders_canceled: Counter[str] = field(default_factory=Counter)
    fills: int = 0
    stops_placed: int = 0  # protective stops the broker accepted (StopPlaced)
    stops_triggered: set[str] = field(default_factory=set)  # protective stops that sold (an OrderFilled on one)
    stop_cancels: Counter[str] = field(default_factory=Counter)  # StopCancelRequested by reason
    stops_denied: Counter[str] = field(default_factory=Counter)  # StopDenied by reason
    exits_withheld: Counter[str] = field(default_factory=Counter)  # ExitWithheld by reason
    oversells: int = 0  # breaches of the over-sell invariant (OversellDetected)
    errors: Counter[str] = field(default_factory=Counter)
    start_equity: Decimal | None = None
    equity: Decimal = Decimal(0)
    peak_equity: Decimal = Decimal(0)
    max_drawdown: Decimal = Decimal(0)
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def observing(cls, bus: EventBus) -> RunStats:
        """A fresh count of everything published on `bus` from now on."""
        stats = cls()
        bus.subscribe(IterationCompleted, stats._on_iteration)
        bus.subscribe(DataRejected, _by_reason(stats.bad_bars))
        bus.subscribe(SignalGenerated, stats._on_signal)
        bus.subscribe(SignalValidated, stats._on_validated)
        bus.subscribe(SignalRejected, _by_reason(stats.rejected))
        bus.subscribe(OrderApproved, stats._on_approved)
        bus.subscribe(OrderDenied, _by_reason(stats.denied))
        bus.subscribe(OrderSubmitted, stats._on_submitted)
        bus.subscribe(OrderRejected, _by_reason(stats.orders_rejected))
        bus.subscribe(OrderCanceled, _by_reason(stats.orders_canceled))
        bus.subscribe(OrderFilled, stats._on_fill)
        bus.subscribe(StopPlaced, stats._on_stop_placed)
        bus.subscribe(StopCancelRequested, _by_reason(stats.stop_cancels))
        bus.subscribe(StopDenied, _by_reason(stats.stops_denied))
        bus.subscribe(ExitWithheld, _by_reason(stats.exits_withheld))
        bus.subscribe(OversellDetected, stats._on_oversell)
        return stats

    def _on_iteration(self, event: IterationCompleted) -> None:
        self.iterations += 1
        self.bars += event.stats.bars

    def _on_signal(self, _: SignalGenerated) -> None:
        self.signals += 1

    def _on_validated(self, _: SignalValidated) -> None:
        self.validated += 1

    def _on_approved(self, _: OrderApproved) -> None:
        self.approved += 1

    def _on_submitted(self, _: OrderSubmitted) -> None:
        self.orders += 1

    def _on_fill(self, event: OrderFilled) -> None:
        self.fills += 1
        if is_protective_stop_id(event.fill.client_order_id):
            self.stops_triggered.add(event.fill.client_order_id)

    def _on_stop_placed(self, _: StopPlaced) -> None:
        self.stops_placed += 1

    def _on_oversell(self, _: OversellDetected) -> None:
        self.oversells += 1

    def mark(self, equity: Decimal) -> None:
        """One iteration's equity, exact: the return and the drawdown of the run are measured from these."""
        if self.start_equity is None:
            self.start_equity = equity
        self.equity = equity
        self.peak_equity = max(self.peak_equity, equity)
        if self.peak_equity > 0:
            self.max_drawdown = max(self.max_drawdown, (self.peak_equity - equity) / self.peak_equity)

    def error(self, kind: str) -> None:
        """An iteration a broker error cut short (no `IterationCompleted`)."""
        self.errors[kind] += 1
