"""ScannerAgent: the second stage. Runs the selected strategy on each iteration's frame and returns its signals.

Each signal is also published (`SignalGenerated`) for the observers.

The decision is the strategy's (`agents/strategies`, chosen by `STRATEGY_NAME`), vectorised over every focus symbol;
this agent only adds what every strategy must share: no decision on a frame shorter than the strategy's lookback or
on a missing latest bar, entries only for symbols not held, exits only for held ones, and, with `STOP_MODE=close`,
the close-based stop-loss (`STOP_LOSS_PCT` below the average entry price), which is risk policy and wins over the
strategy's own exit reason (the other stop modes protect positions with stops at the broker, `agents/stops.py`).
Signals are the only per-symbol work: exits first, then entries, each in column order.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

import numpy as np

from agents.strategies.base import Holdings, Signals, Strategy
from core.bus import EventBus
from core.clock import Clock
from core.exit_reasons import STOP_LOSS_SIGNAL_PREFIX
from core.messages import SignalGenerated
from core.order_ids import signal_correlation_id
from core.portfolio import PortfolioView
from core.timeconv import datetime64_to_datetime
from core.types import BarFrame, FloatArray, OrderSide, bar_price


def return_volatility(closes: FloatArray) -> FloatArray:
    """Sample std of the close-to-close returns in `closes` per column (what `ALLOCATION_METHOD=score_vol` uses)."""
    if closes.shape[0] <= 2:
        return np.zeros(closes.shape[1])  # one return has no sample std
    with np.errstate(invalid="ignore", divide="ignore"):
        returns = np.diff(closes, axis=0) / closes[:-1]
    vol: FloatArray = returns.std(axis=0, ddof=1)
    return vol


class ScannerAgent:
    def __init__(
        self,
        bus: EventBus,
        portfolio: PortfolioView,
        clock: Clock,
        strategy: Strategy,
        *,
        tag: str,
        stop_loss_pct: float | None,
    ) -> None:
        """`stop_loss_pct`: the close-based stop-loss exit's distance below the average entry (None: no such exit)."""
        self._bus = bus
        self._portfolio = portfolio
        self._clock = clock
        self._strategy = strategy
        self._stop_loss_pct = stop_loss_pct
        self.strategy = tag  # the label of its signals, correlation ids and client order ids
        self._columns: dict[str, int] = {}
        self._columns_for: tuple[str, ...] | None = None

    def on_bars(self, frame: BarFrame, *, new_rows: int) -> list[SignalGenerated]:
        """The signals on `frame` (exits, then entries), each published as it is made; none without a new row."""
        if new_rows == 0 or frame.n_rows < self._strategy.lookback:
            return []
        if self._columns_for is not frame.symbols:
            self._columns = {symbol: col for col, symbol in enumerate(frame.symbols)}
            self._columns_for = frame.symbols
        holdings = Holdings.of(self._columns, frame.n_symbols, self._portfolio.positions)
        signals = self._checked(self._strategy.signals(frame, holdings), frame.n_symbols)
        close = frame.close[-1]
        stopped = np.zeros(frame.n_symbols, dtype=bool)
        stop = holdings.avg_entry_price
        if self._stop_loss_pct is not None:
            stop = holdings.avg_entry_price * (1 - self._stop_loss_pct)
            with np.errstate(invalid="ignore"):
                stopped = holdings.held & (close <= stop)
        decided = holdings.held & ~np.isnan(close)  # no decision on made-up data
        exits = np.flatnonzero(decided & (stopped | signals.exits))
        entries = np.flatnonzero(signals.entries & ~holdings.held & ~np.isnan(close))
        if not (exits.size or entries.size):
            return []
        volatility = return_volatility(frame.close[-self._strategy.lookback :])
        bar_ts = datetime64_to_datetime(frame.timestamps[-1])
        now = self._clock.now()
        made: list[SignalGenerated] = []
        for col in exits.tolist():
            if stopped[col]:
                reason = f"{STOP_LOSS_SIGNAL_PREFIX} close {close[col]:.2f} <= {stop[col]:.2f}"
            else:
                reason = signals.reasons.get(col, f"{self.strategy} exit")
            made.append(self._emit(frame, col, OrderSide.SELL, signals, volatility, bar_ts, now, reason))
        for col in entries.tolist():
            reason = signals.reasons.get(col, f"{self.strategy} entry")
            made.append(self._emit(frame, col, OrderSide.BUY, signals, volatility, bar_ts, now, reason))
        return made

    def _checked(self, signals: Signals, n_symbols: int) -> Signals:
        # A plug-in's arrays are someone else's: a wrong shape must fail loudly here, not pick wrong symbols.
        for name in ("entries", "exits", "score"):
            shape = np.shape(getattr(signals, name))
            if shape != (n_symbols,):
                raise ValueError(f"strategy {self.strategy}: signals().{name} has shape {shape}, not ({n_symbols},)")
        return replace(
            signals,
            entries=np.asarray(signals.entries, dtype=bool),
            exits=np.asarray(signals.exits, dtype=bool),
            score=np.asarray(signals.score, dtype=np.float64),
        )

    def _emit(
        self,
        frame: BarFrame,
        col: int,
        side: OrderSide,
        signals: Signals,
        volatility: FloatArray,
        bar_ts: datetime,
        now: datetime,
        reason: str,
    ) -> SignalGenerated:
        symbol = frame.symbols[col]
        score = float(signals.score[col])
        signal = SignalGenerated(
            ts_event=now,
            ts_init=now,
            correlation_id=signal_correlation_id(self.strategy, symbol, side, bar_ts),
            strategy=self.strategy,
            symbol=symbol,
            side=side,
            is_exit=side is OrderSide.SELL,
            price=bar_price(frame.close[-1, col]),
            score=score if not math.isnan(score) else 0.0,
            volatility=float(volatility[col]),
            bar_ts=bar_ts,
            reason=reason,
        )
        self._bus.publish(signal)
        return signal
