"""StopAgent: each position's protective stop level, the stop plan, and the intraday stop check.

`STOP_MODE=fixed` puts the level at the average entry × (1 − STOP_LOSS_PCT); `trailing` at the daemon's high-water
mark × (1 − TRAILING_STOP_PCT). The high-water mark starts at the entry and rises with the highs of complete bars
after the entry and the intraday prices the daemon sees; it is persisted (`core/store/high_water.py`), so a restart
trails from where it was. Levels are on the exchange's tick.

`plan` turns the positions and the orders resting at the broker into a `StopPlan` (`agents/stop_plan.py`) for risk
to gate and execution to carry out. `intraday_exits` (paper/live, while the market is open) compares one batched
snapshot of the held symbols with their levels: a price at or below the level is an exit signal (strategy
`STOP_EXIT_TAG`), so a stop is enforced even where no broker stop could be placed (or trails above the broker's).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

import numpy as np
import structlog

from agents.stop_plan import Holding, StopPlan, plan_stops
from core.broker.base import MarketData
from core.broker.order_shape import round_stop_price
from core.bus import EventBus
from core.clock import Clock
from core.messages import SignalGenerated
from core.order_ids import STOP_EXIT_TAG, signal_correlation_id
from core.portfolio import OwnedLedger
from core.store import HighWaterMark
from core.timeconv import datetime_to_ns
from core.types import Asset, BarFrame, BrokerOrder, OrderSide, Position, bar_price

log = structlog.get_logger(__name__)

_HUNDRED = Decimal(100)


class StopMode(enum.StrEnum):
    FIXED = "fixed"  # a stop at the average entry × (1 − STOP_LOSS_PCT)
    TRAILING = "trailing"  # a stop TRAILING_STOP_PCT below the highest price since the entry
    CLOSE = "close"  # no stops at the broker: the scanner's close-based stop-loss exit at the next open


@dataclass(frozen=True, slots=True)
class StopConfig:
    mode: StopMode
    stop_loss_pct: Decimal
    trailing_stop_pct: Decimal
    fractional_enabled: bool  # ENABLE_FRACTIONAL_SHARES: whether a fractional stop may be placed
    bar_interval: timedelta  # the bars' length: a bar counts for the high-water mark if it ends after the entry
    intraday_check: bool  # paper/live: compare the latest trade price with each level during the session

    def __post_init__(self) -> None:
        if self.mode is StopMode.CLOSE:
            raise ValueError("STOP_MODE=close places no stops: build no StopAgent")
        for name in ("stop_loss_pct", "trailing_stop_pct"):
            value: Decimal = getattr(self, name)
            if not value.is_finite() or not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value}")

    @property
    def trail_percent(self) -> Decimal | None:
        """The broker trailing stop's trail in percent units (5 = 5%), as Alpaca takes it; None in fixed mode."""
        return self.trailing_stop_pct * _HUNDRED if self.mode is StopMode.TRAILING else None


class HighWaterStore(Protocol):
    """Where the high-water marks persist (the `StateStore`)."""

    def save_high_water(self, mark: HighWaterMark) -> None: ...

    def high_water_marks(self) -> dict[str, HighWaterMark]: ...

    def delete_high_water(self, symbols: Iterable[str]) -> None: ...


class StopAgent:
    def __init__(
        self,
        bus: EventBus,
        clock: Clock,
        config: StopConfig,
        *,
        marks: HighWaterStore,
        ledger: OwnedLedger,
        is_used: Callable[[str], bool],
        used_among: Callable[[Collection[str]], set[str]] | None = None,
        market_data: MarketData | None = None,
    ) -> None:
        """`ledger`: the owned positions' entries (a stop's id derives from the latest, the high-water mark starts
        at the first); `is_used(coid)`: whether a client order id was ever used (the store holds it); `used_among`:
        the same for many ids in one query (the store's `known_order_ids`; None: asked one by one); `market_data`: the
        intraday check's snapshots (needed with `config.intraday_check`)."""
        if config.intraday_check and market_data is None:
            raise ValueError("the intraday check needs market data")
        self._bus = bus
        self._clock = clock
        self.config = config
        self._store = marks
        self._marks = marks.high_water_marks()
        self._ledger = ledger
        self._is_used = is_used
        self._used_among = used_among
        self._market_data = market_data

    # -- levels ---------------------------------------------------------------------------------------------------
    def level(self, position: Position) -> Decimal:
        """The position's stop level, on the tick (rounded up: a sell stop is never placed below its level); 0 when
        there is none to place (a zero average entry)."""
        if self.config.mode is StopMode.TRAILING:
            level = self._high_water(position) * (1 - self.config.trailing_stop_pct)
        else:
            level = position.avg_entry_price * (1 - self.config.stop_loss_pct)
        return round_stop_price(level) if level > 0 else Decimal(0)

    def high_water(self, symbol: str) -> Decimal | None:
        """The stored high-water mark of `symbol` (None: none yet)."""
        mark = self._marks.get(symbol)
        return mark.price if mark is not None else None

    def _high_water(self, position: Position) -> Decimal:
        """The mark of the current holding: a new holding (another opening entry) starts at its entry price."""
        opened = self._opened_by(position.symbol)
        mark = self._marks.get(position.symbol)
        if mark is None or mark.opened_by != opened:
            mark = self._save(position.symbol, opened, position.avg_entry_price)
        return mark.price

    def _raise(self, position: Position, price: Decimal) -> None:
        if price.is_finite() and price > self._high_water(position):
            self._save(position.symbol, self._opened_by(position.symbol), price)

    def _save(self, symbol: str, opened: str, price: Decimal) -> HighWaterMark:
        mark = HighWaterMark(symbol, opened, price, self._clock.now())
        self._store.save_high_water(mark)
        self._marks[symbol] = mark
        return mark

    def _opened_by(self, symbol: str) -> str:
        fill = self._ledger.opened_by(symbol)
        return fill.client_order_id if fill is not None else ""

    def observe_bars(self, frame: BarFrame, positions: Mapping[str, Position]) -> None:
        """Raise the trailing marks to the highs of the complete bars that ended after each position's entry (the
        entry's own bar counts: its high comes after the open the entry filled at)."""
        if self.config.mode is not StopMode.TRAILING or frame.n_rows == 0:
            return
        ends = frame.timestamps_ns + np.int64(self.config.bar_interval // timedelta(microseconds=1) * 1000)
        for symbol, position in positions.items():
            opened = self._ledger.opened_by(symbol)
            if symbol not in frame.symbols or opened is None:
                continue
            highs = frame.high[ends > datetime_to_ns(opened.ts), frame.column(symbol)]
            highs = highs[np.isfinite(highs) & (highs > 0)]
            if highs.size:
                self._raise(position, bar_price(float(highs.max())))

    # -- the plan -------------------------------------------------------------------------------------------------
    def plan(
        self,
        positions: Mapping[str, Position],
        open_orders: Sequence[BrokerOrder],
        assets: Mapping[str, Asset],
        *,
        session: date,
    ) -> StopPlan:
        """What to cancel and place so each position is covered once (stops of positions gone are canceled).

        `session`: the session new stops are for. An asset not looked up yet gets whole-share stops only.
        """
        holdings: dict[str, Holding] = {}
        for symbol, position in positions.items():
            if position.qty <= 0:
                continue
            asset = assets.get(symbol)
            holdings[symbol] = Holding(
                symbol=symbol,
                qty=position.qty,
                level=self.level(position),
                fractional=self.config.fractional_enabled and asset is not None and asset.fractionable,
                anchor=self._ledger.latest_entry(symbol) or symbol,
            )
        gone = [symbol for symbol in self._marks if symbol not in holdings]
        if gone:
            self._store.delete_high_water(gone)
            for symbol in gone:
                del self._marks[symbol]
        return plan_stops(
            holdings,
            open_orders,
            trail_percent=self.config.trail_percent,
            session=session,
            is_used=self._is_used,
            used_among=self._used_among,
        )

    # -- the intraday check ---------------------------------------------------------------------------------------
    async def intraday_exits(self, positions: Mapping[str, Position]) -> list[SignalGenerated]:
        """One batched snapshot of the held symbols; an exit signal (published) for each whose latest trade is at or
        below its level. Trailing marks rise with the prices seen. Nothing without the intraday check."""
        if not self.config.intraday_check or self._market_data is None or not positions:
            return []
        snapshots = await self._market_data.get_snapshots(sorted(positions))
        exits: list[SignalGenerated] = []
        for symbol in sorted(positions):
            snapshot = snapshots.get(symbol)
            position = positions[symbol]
            if snapshot is None or position.qty <= 0:
                continue
            price = bar_price(snapshot.price)
            if self.config.mode is StopMode.TRAILING:
                self._raise(position, price)
            level = self.level(position)
            if price <= level:
                exits.append(self._exit(symbol, price, level, snapshot.ts))
        return exits

    def _exit(self, symbol: str, price: Decimal, level: Decimal, seen_at: datetime) -> SignalGenerated:
        log.warning("stop_level_reached", symbol=symbol, price=str(price), level=str(level))
        now = self._clock.now()
        signal = SignalGenerated(
            ts_event=now,
            ts_init=now,
            correlation_id=signal_correlation_id(STOP_EXIT_TAG, symbol, OrderSide.SELL, seen_at),
            strategy=STOP_EXIT_TAG,
            symbol=symbol,
            side=OrderSide.SELL,
            is_exit=True,
            price=price,
            score=0.0,
            volatility=0.0,
            bar_ts=seen_at,
            reason=f"stop: price {price} at or below the stop level {level} ({self.config.mode.value})",
        )
        self._bus.publish(signal)
        return signal
