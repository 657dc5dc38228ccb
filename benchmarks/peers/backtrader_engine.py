"""backtrader under the peer rules: one `Cerebro` per symbol (each its own $100k account), observers off.

backtrader's `StdDev` is the population standard deviation, so `SampleStdDev` below computes the sample one
(ddof=1) the other two engines use. Market orders placed in `next()` fill at the next bar's open (no cheat-on-open);
the stop is checked on the close in `next()` and sells at the next open, like `STOP_MODE=close`. Sizes are
fractional: 2% of the account's value divided by the close, as a float.
"""

from __future__ import annotations

import math
import time
from datetime import date
from typing import Any

# backtrader ships no type information; it is only ever imported by this optional benchmark.
import backtrader as bt  # type: ignore[import-untyped]
import pandas as pd

from benchmarks.peers.rules import CASH, ENTRY_FRACTION, ENTRY_Z, EXIT_Z, STOP_LOSS, WINDOW, EngineRun, pair_fills


class SampleStdDev(bt.Indicator):  # type: ignore[misc]
    """Sample standard deviation (ddof=1) of the last `period` values, two-pass like numpy's."""

    lines: Any = ("stddev",)  # backtrader's metaclass turns these tuples into line and parameter objects
    params: Any = (("period", WINDOW),)

    def __init__(self, *_data: Any, **_params: Any) -> None:  # backtrader's metaclass consumed both already
        self.addminperiod(self.p.period)

    def next(self) -> None:
        values = self.data.get(size=self.p.period)
        mean = math.fsum(values) / len(values)
        self.lines.stddev[0] = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


class ZScoreStrategy(bt.Strategy):  # type: ignore[misc]
    def __init__(self) -> None:
        self.mean = bt.indicators.SimpleMovingAverage(self.data.close, period=WINDOW)
        self.std = SampleStdDev(self.data.close, period=WINDOW)
        self.fills: list[tuple[date, bool]] = []

    def notify_order(self, order: Any) -> None:
        if order.status == order.Completed:
            self.fills.append((bt.num2date(order.executed.dt).date(), bool(order.isbuy())))

    def next(self) -> None:
        std = self.std[0]
        if not std > 0:
            return
        close = self.data.close[0]
        z = (close - self.mean[0]) / std
        position = self.getposition(self.data)
        if not position.size:
            if z <= ENTRY_Z:
                self.buy(size=ENTRY_FRACTION * self.broker.getvalue() / close)
        elif z >= EXIT_Z or close <= position.price * (1 - STOP_LOSS):
            self.close()


def run_backtrader(frames: dict[str, pd.DataFrame]) -> EngineRun:
    trades = {}
    bars = 0
    seconds = 0.0
    for symbol, frame in frames.items():
        t = time.perf_counter()
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.broker.setcash(CASH)
        cerebro.adddata(bt.feeds.PandasData(dataname=frame))
        cerebro.addstrategy(ZScoreStrategy)
        (strategy,) = cerebro.run()
        seconds += time.perf_counter() - t
        bars += len(frame)
        if strategy.fills:
            trades[symbol] = pair_fills(strategy.fills)
    return EngineRun(
        engine="backtrader",
        symbols=len(frames),
        bars=bars,
        seconds=seconds,
        trades=trades,
        notes={"runs": len(frames), "cash_per_symbol": CASH},
    )
