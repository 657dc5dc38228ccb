"""backtesting.py under the peer rules: one `FractionalBacktest` per symbol, each its own $100k account.

backtesting.py backtests one instrument at a time, so 505 symbols are 505 runs. Fractional shares (a unit of 1e-6
share) stand for our notional orders: with whole shares, 2% of $100k buys no share of a $2,049 stock. `size=0.02`
is backtesting.py's "fraction of available liquidity" (cash plus open P&L), i.e. 2% of that symbol's equity. Orders
fill at the next open (`trade_on_close=False`); the stop is checked on the close in `next()` and sells at the next
open, like `STOP_MODE=close`. The z-score is precomputed per run with `self.I` (pandas rolling, ddof=1), the way
backtesting.py strategies compute indicators.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

# backtesting.py ships no type information; it is only ever imported by this optional benchmark.
from backtesting import Strategy  # type: ignore[import-untyped]
from backtesting.lib import FractionalBacktest  # type: ignore[import-untyped]

from benchmarks.peers.rules import CASH, ENTRY_FRACTION, ENTRY_Z, EXIT_Z, STOP_LOSS, WINDOW, EngineRun, Trade

FRACTIONAL_UNIT = 1e-6


def rolling_zscore(close: Any, window: int) -> Any:
    series = pd.Series(close)
    return ((series - series.rolling(window).mean()) / series.rolling(window).std(ddof=1)).to_numpy()


class ZScoreStrategy(Strategy):  # type: ignore[misc]
    window = WINDOW

    def init(self) -> None:
        self.z = self.I(rolling_zscore, self.data.Close, self.window, name="z")

    def next(self) -> None:
        z = self.z[-1]
        if not self.position:
            if z <= ENTRY_Z:
                self.buy(size=ENTRY_FRACTION)
            return
        close = self.data.Close[-1]
        if z >= EXIT_Z or close <= self.trades[-1].entry_price * (1 - STOP_LOSS):
            self.position.close()


def _trades(result: Any) -> list[Trade]:
    closed = result["_trades"]
    trades: list[Trade] = [
        (entry.date(), exit_.date()) for entry, exit_ in zip(closed["EntryTime"], closed["ExitTime"], strict=True)
    ]
    trades.extend((trade.entry_time.date(), None) for trade in result["_strategy"].trades)  # open at the end
    return trades


def run_backtesting_py(frames: dict[str, pd.DataFrame]) -> EngineRun:
    trades: dict[str, list[Trade]] = {}
    bars = 0
    seconds = 0.0
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore")  # per-run notices (open trades left open at the end); not the bench's output
        for symbol, frame in frames.items():
            t = time.perf_counter()
            backtest = FractionalBacktest(
                frame,
                ZScoreStrategy,
                cash=CASH,
                commission=0.0,
                spread=0.0,
                trade_on_close=False,
                exclusive_orders=False,
                finalize_trades=False,
                fractional_unit=FRACTIONAL_UNIT,
            )
            result = backtest.run()
            seconds += time.perf_counter() - t
            bars += len(frame)
            trades[symbol] = _trades(result)
    return EngineRun(
        engine="backtesting.py",
        symbols=len(frames),
        bars=bars,
        seconds=seconds,
        trades={symbol: t for symbol, t in trades.items() if t},
        notes={"runs": len(frames), "cash_per_symbol": CASH},
    )
