"""The stop step: protective stops planned, gated and placed, and the over-sell invariant checked.

It runs in every iteration after the exits and entries are submitted, and alone on the protect-only ticks (paper/live
while the market is closed, which is what re-places the DAY stops of fractions before the open; sim at each
session's open, so an entry filled at the open is protected on that day's bar). It never fetches bars, never marks
equity and never runs the strategy:

settle broker updates → refresh the portfolio → check the invariant → StopAgent.plan → RiskAgent.decide_stops →
ExecutionAgent.protect (cancels confirmed, then placements) → when stops moved, refresh and check the invariant again.

With `STOP_MODE=close` no `ProtectionStep` is built and nothing of this runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime

import structlog

from agents.execution import ExecutionAgent, StopOutcome
from agents.oversell import oversells
from agents.risk import RiskAgent
from agents.stops import StopAgent
from core.bus import EventBus
from core.clock import Clock, NyseCalendar
from core.messages import OversellDetected
from core.portfolio import PortfolioView
from core.store import StateStore
from core.types import Asset, BrokerOrder, Position

log = structlog.get_logger(__name__)


class ProtectionStep:
    def __init__(
        self,
        *,
        bus: EventBus,
        clock: Clock,
        calendar: NyseCalendar,
        store: StateStore,
        portfolio: PortfolioView,
        execution: ExecutionAgent,
        risk: RiskAgent,
        stops: StopAgent,
        assets: Mapping[str, Asset],
        on_closed_ticks: bool,
    ) -> None:
        """`on_closed_ticks`: run alone on the schedule's closed-market ticks (paper/live); the sim schedule has its
        own open ticks instead."""
        self._bus = bus
        self._clock = clock
        self._calendar = calendar
        self._store = store
        self._portfolio = portfolio
        self._execution = execution
        self._risk = risk
        self.stops = stops
        self._assets = assets
        self.on_closed_ticks = on_closed_ticks

    def stop_session(self, now: datetime) -> date:
        """The session new stops are for: the current one while the market is open, else the next one."""
        if self._calendar.is_open(now):
            return self._calendar.session_date(now)
        return self._calendar.session_date(self._calendar.next_open(now))

    async def run(self) -> StopOutcome:
        updates = await self._execution.fetch_updates()
        if updates:
            with self._store.transaction():
                self._execution.apply_updates(updates)
        snapshot = await self._portfolio.refresh()
        self.check(snapshot.positions, snapshot.open_orders, checked="refresh")
        now = self._clock.now()
        session = self.stop_session(now)
        plan = self.stops.plan(snapshot.positions, snapshot.open_orders, self._assets, session=session)
        approved = self._risk.decide_stops(plan, snapshot, session=self._calendar.session_date(now))
        outcome = await self._execution.protect(approved)
        if outcome.placed or outcome.canceled:
            # Checked again on the broker's own figures once stops moved (a stop may also have sold meanwhile).
            after = await self._portfolio.refresh()
            self.check(after.positions, after.open_orders, checked="stops")
        return outcome

    def check(self, positions: Mapping[str, Position], open_orders: Iterable[BrokerOrder], *, checked: str) -> int:
        """The over-sell invariant: every breach logged as an error and published; returns how many."""
        breaches = oversells(positions, open_orders)
        now = self._clock.now()
        for breach in breaches:
            log.error(
                "oversell_detected",
                symbol=breach.symbol,
                open_sell_qty=str(breach.open_sell_qty),
                owned_qty=str(breach.owned_qty),
                checked=checked,
            )
            self._bus.publish(
                OversellDetected(
                    ts_event=now,
                    ts_init=now,
                    symbol=breach.symbol,
                    open_sell_qty=breach.open_sell_qty,
                    owned_qty=breach.owned_qty,
                    checked=checked,
                )
            )
        return len(breaches)
