"""ScannerAgent: the default strategy, vectorised over every focus symbol at once.

20-day z-score mean reversion: enter long when the latest close sits `zscore_entry` (−2.0) standard deviations below
its 20-bar mean; exit when the z-score is back to `zscore_exit` (0) or the close falls `stop_loss_pct` below the
average entry price. One numpy pass per iteration over a (window, symbols) array; signals are the only per-symbol work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from core.bus import EventBus
from core.clock import Clock
from core.messages import BarsFetched, SignalGenerated
from core.portfolio import PortfolioView
from core.timeconv import datetime64_to_datetime
from core.types import BarFrame, FloatArray, OrderSide


@dataclass(frozen=True, slots=True)
class ZScoreParams:
    window: int = 20
    entry: float = -2.0
    exit: float = 0.0
    stop_loss_pct: float = 0.05


@dataclass(frozen=True, slots=True)
class ZScores:
    """Per-symbol statistics of the latest bar; NaN where the window is incomplete or the latest bar is missing."""

    zscore: FloatArray
    close: FloatArray
    volatility: FloatArray


def zscores(frame: BarFrame, window: int) -> ZScores:
    """z = (close − mean) / std over the last `window` closes (sample std), for every column at once."""
    closes = frame.close[-window:]
    n = closes.shape[1]
    if closes.shape[0] < window:
        nan = np.full(n, np.nan)
        return ZScores(nan, nan, nan)
    mean = closes.mean(axis=0)
    std = closes.std(axis=0, ddof=1)
    last = closes[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(std > 0, (last - mean) / std, np.nan)
        returns = np.diff(closes, axis=0) / closes[:-1]
    vol = returns.std(axis=0, ddof=1) if window > 2 else np.zeros(n)
    return ZScores(zscore=z, close=last, volatility=vol)


class ScannerAgent:
    def __init__(
        self, bus: EventBus, portfolio: PortfolioView, clock: Clock, params: ZScoreParams, *, strategy: str
    ) -> None:
        self._bus = bus
        self._portfolio = portfolio
        self._clock = clock
        self._params = params
        self.strategy = strategy
        self.signals = 0
        self.latest: ZScores | None = None
        self._columns: dict[str, int] = {}
        self._columns_for: tuple[str, ...] | None = None
        bus.subscribe(BarsFetched, self.on_bars)

    def on_bars(self, event: BarsFetched) -> None:
        if event.new_rows == 0 or event.frame.n_rows == 0:
            return
        frame = event.frame
        stats = zscores(frame, self._params.window)
        self.latest = stats
        bar_ts = datetime64_to_datetime(frame.timestamps[-1])
        entries, exits = self._decide(frame, stats)
        now = self._clock.now()
        for col, reason in exits:
            self._emit(frame.symbols[col], OrderSide.SELL, True, stats, col, bar_ts, now, reason)
        for col in entries:
            z = float(stats.zscore[col])
            self._emit(frame.symbols[col], OrderSide.BUY, False, stats, col, bar_ts, now, f"zscore {z:.2f} <= entry")

    def _decide(self, frame: BarFrame, stats: ZScores) -> tuple[npt.NDArray[np.intp], list[tuple[int, str]]]:
        held = np.zeros(frame.n_symbols, dtype=bool)
        exits: list[tuple[int, str]] = []
        if self._columns_for is not frame.symbols:
            self._columns = {symbol: col for col, symbol in enumerate(frame.symbols)}
            self._columns_for = frame.symbols
        for symbol, position in self._portfolio.positions.items():  # few positions, many symbols: loop the few
            col = self._columns.get(symbol)
            if col is None or position.qty <= 0:
                continue
            held[col] = True
            close, z = float(stats.close[col]), float(stats.zscore[col])
            if math.isnan(close):
                continue  # no valid bar: no decision on made-up data
            stop = float(position.avg_entry_price) * (1 - self._params.stop_loss_pct)
            if close <= stop:
                exits.append((col, f"stop_loss: close {close:.2f} <= {stop:.2f}"))
            elif z >= self._params.exit:
                exits.append((col, f"zscore {z:.2f} >= exit"))
        exits.sort()
        with np.errstate(invalid="ignore"):
            entries = np.flatnonzero((stats.zscore <= self._params.entry) & ~held)
        return entries, exits

    def _emit(
        self,
        symbol: str,
        side: OrderSide,
        is_exit: bool,
        stats: ZScores,
        col: int,
        bar_ts: datetime,
        now: datetime,
        reason: str,
    ) -> None:
        z = float(stats.zscore[col])
        self.signals += 1
        self._bus.publish(
            SignalGenerated(
                ts_event=now,
                ts_init=now,
                correlation_id=f"{self.strategy}:{symbol}:{side.value}:{bar_ts:%Y%m%dT%H%M}",
                strategy=self.strategy,
                symbol=symbol,
                side=side,
                is_exit=is_exit,
                price=float(stats.close[col]),
                score=-z if not math.isnan(z) else 0.0,
                volatility=float(stats.volatility[col]),
                bar_ts=bar_ts,
                reason=reason,
            )
        )
