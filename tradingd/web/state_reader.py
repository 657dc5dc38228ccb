"""Reads of the state DB for the API: one read-only connection per request, never the daemon's `StateStore`.

The web server answers from its own thread (and `tradingd serve` from its own process): a connection of its own per
request keeps it off the daemon's connection and transaction, and SQLite refuses any write through it. WAL lets it
read while the daemon writes. Each request's reads run in one read transaction (`StateStore.read_snapshot`), so
they all see the same committed iteration.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from agents.risk import read_trading_state
from agents.sizing import TierExposureTracker
from config.settings import Settings
from core.flags import FLAG_DAILY_LOSS, FLAG_DRAWDOWN, FLAG_DRAWDOWN_PEAK
from core.state_guard import GuardedFlags, KillSwitchFile, kill_switch_path
from core.store import StateStore
from core.store.equity import EquityMark
from core.types import OrderStatus, Position, Tier
from tradingd.cli_state import fill_json, order_json
from tradingd.configs import tier_config
from tradingd.web.records import (
    FillRow,
    OrderRow,
    PositionRow,
    RecentWarning,
    TierExposure,
    TradingStateReasonRow,
    TradingStateView,
)

CENT: Final = Decimal("0.01")
# Journal rows the page lists as warnings: what an operator should look at.
WARNING_TYPES: Final = (
    "OrderRejected",
    "CircuitBreakerTripped",
    "IterationFailed",
    "OversellDetected",
    "TradingStateChanged",
    "FlattenRequested",
)


class StateMissingError(Exception):
    """No state DB at the mode's path yet (no daemon has run with this DATA_DIR)."""


class StateReader:
    """Opens the mode's state DB read-only for one request at a time; knows the tiers and the kill-switch file."""

    def __init__(self, settings: Settings, db: Path, tiers: Mapping[str, Tier]) -> None:
        self.settings = settings
        self.db = db
        self._tiers = dict(tiers)

    @contextmanager
    def store(self) -> Iterator[StateStore]:
        if not self.db.is_file():
            raise StateMissingError(f"no state DB at {self.db}: no daemon has run with this DATA_DIR and mode yet")
        store = StateStore(self.db, read_only=True)
        try:
            with store.read_snapshot():  # one WAL snapshot per request: its reads never mix two iterations
                yield store
        finally:
            store.close()

    def flags(self, store: StateStore) -> GuardedFlags:
        """The flags with the kill-switch file, read only (no `sync`: that writes)."""
        return GuardedFlags(store, KillSwitchFile(kill_switch_path(store.path)))

    def trading_state(self, store: StateStore) -> TradingStateView:
        view = read_trading_state(self.flags(store)).as_json()
        return TradingStateView(
            state=view["state"], reasons=[TradingStateReasonRow(**reason) for reason in view["reasons"]]
        )

    def breakers(self, store: StateStore) -> dict[str, str | None]:
        return {
            "daily_loss_limit": store.get_flag(FLAG_DAILY_LOSS),
            "max_drawdown": store.get_flag(FLAG_DRAWDOWN),
        }

    def drawdown_peak(self, store: StateStore, mark: EquityMark) -> Decimal:
        """The peak the drawdown breaker measures from: the all-time peak, or the one since a resume while lower
        (what `agents/risk.py::RiskAgent._drawdown_peak` uses, read without rebasing anything)."""
        stored = store.get_flag(FLAG_DRAWDOWN_PEAK)
        try:
            since_resume = Decimal(stored) if stored is not None else None
        except ArithmeticError:
            since_resume = None
        if since_resume is None or not since_resume.is_finite():
            return mark.peak_equity
        return min(mark.peak_equity, max(since_resume, mark.last_equity))

    def positions(self, store: StateStore) -> list[PositionRow]:
        positions = store.load_positions()
        held = self.exposure_tracker(positions).snapshot()["symbols"]
        rows = []
        for symbol in sorted(positions):
            position = positions[symbol]
            cost = position.qty * position.avg_entry_price
            pnl = position.market_value - cost
            rows.append(
                PositionRow(
                    symbol=symbol,
                    tier=held.get(symbol, {}).get("tier"),
                    qty=str(position.qty),
                    avg_entry_price=str(position.avg_entry_price.quantize(CENT)),
                    market_price=str(position.market_price.quantize(CENT)),
                    market_value=str(position.market_value.quantize(CENT)),
                    unrealized_pl=str(pnl.quantize(CENT)),
                    unrealized_pl_pct=float(round(pnl / cost * 100, 3)) if cost else None,
                )
            )
        return rows

    def exposure_tracker(self, positions: Mapping[str, Position]) -> TierExposureTracker:
        tracker = TierExposureTracker(tier_config(self.settings, self._tiers))
        tracker.rebuild(dict(positions))
        return tracker

    def exposure(self, store: StateStore, equity: Decimal | None) -> list[TierExposure]:
        tiers = self.exposure_tracker(store.load_positions()).snapshot()["tiers"]
        rows = []
        for tier, share in self.settings.tier_allocations.items():
            allocation = (equity or Decimal(0)) * share
            exposure = Decimal(tiers.get(tier.value, "0"))
            rows.append(
                TierExposure(
                    tier=tier.value,
                    exposure=str(exposure),
                    allocation=str(allocation.quantize(CENT)),
                    pct_of_allocation=float(round(exposure / allocation * 100, 2)) if allocation > 0 else None,
                )
            )
        return rows

    def orders(self, store: StateStore, statuses: set[OrderStatus] | None) -> list[OrderRow]:
        return [OrderRow(**order_json(record)) for record in store.order_records(statuses)]

    def fills(self, store: StateStore, since: datetime | None) -> list[FillRow]:
        return [FillRow(**fill_json(fill)) for fill in store.fills(since)]

    def equity_marks(self, store: StateStore, start: date | None, end: date | None) -> list[EquityMark]:
        return store.equity_marks(start, end)

    def warnings(self, store: StateStore, limit: int) -> list[RecentWarning]:
        return [
            RecentWarning(ts=row.ts_event, kind=row.type, detail=_warning_detail(row.type, row.payload))
            for row in store.latest_journal(WARNING_TYPES, limit)
        ]

    def last_of(self, store: StateStore, message_type: str) -> tuple[int, str, dict[str, Any]] | None:
        """(seq, ts_event, payload) of the latest journal row of a type, or None."""
        rows = store.latest_journal((message_type,), 1)
        return None if not rows else (rows[0].seq, rows[0].ts_event, _payload(rows[0].payload))


def _payload(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _warning_detail(kind: str, text: Any) -> str:
    payload = _payload(text)
    if kind == "TradingStateChanged":
        change = f"{payload.get('previous')} -> {payload.get('current')}"
        return f"{change} ({payload.get('reason')}) {payload.get('detail', '')}"
    if kind == "OrderRejected":
        return f"{payload.get('symbol')}: {payload.get('reason')} {payload.get('detail', '')}"
    if kind == "IterationFailed":
        return f"{payload.get('kind')}: {payload.get('detail', '')}"
    if kind == "CircuitBreakerTripped":
        return f"{payload.get('breaker')}: {payload.get('detail', '')}"
    return ", ".join(f"{key}={value}" for key, value in payload.items() if key != "ts_init")
