"""The one set of rules all three engines run, the bars they run on, and the trade lists they are compared by.

Rules (issue 13, deliverable 5): 20-day window, sample std (ddof=1), enter at z <= -2, exit at z >= 0 or when a close
is at or below 95% of the entry price (close-based stop), every order a market order filled at the next open, 2% of
equity per entry, $100k cash, no commission, zero slippage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from core.bars import load_daily_bars
from core.types import BarFrame

DATA_FILE = Path(__file__).resolve().parents[2] / "data" / "sp500_daily_2013_2018.csv.xz"

WINDOW = 20
ENTRY_Z = -2.0
EXIT_Z = 0.0
STOP_LOSS = 0.05  # exit when a close is at or below entry price x (1 - STOP_LOSS), at the next open
ENTRY_FRACTION = 0.02  # bench-only sizing: 2% of equity per entry
CASH = 100_000.0

# One trade: the dates its entry and its exit filled (None: still open at the end of the data).
Trade = tuple[date, date | None]
Trades = dict[str, list[Trade]]


@dataclass(frozen=True, slots=True)
class EngineRun:
    """What one engine did: bars it stepped through, seconds it took (data preparation excluded), its trades."""

    engine: str
    symbols: int
    bars: int
    seconds: float
    trades: Trades
    notes: dict[str, object]

    @property
    def bars_per_s(self) -> float:
        return self.bars / self.seconds if self.seconds > 0 else 0.0

    @property
    def n_trades(self) -> int:
        return sum(len(t) for t in self.trades.values())


def load_bars(n_symbols: int | None) -> BarFrame:
    """The bundled bars through the project's own loader; the first `n_symbols` by name (all 505 when None)."""
    every = load_daily_bars(DATA_FILE)
    if n_symbols is None:
        return every
    return load_daily_bars(DATA_FILE, symbols=every.symbols[:n_symbols])


def per_symbol_frames(bars: BarFrame) -> dict[str, pd.DataFrame]:
    """One OHLCV DataFrame per symbol, indexed by trading date, for the peers.

    Rows with any missing OHLC value are dropped (both peers refuse NaN prices); the 505-symbol file has 11 such
    bars, and 6 symbols with gaps. tradingd instead blanks such a bar and sees no z-score while the gap is in its
    window: the agreement check reports any trade this changes.
    """
    days = pd.DatetimeIndex(bars.timestamps.astype("datetime64[D]"))  # midnight New York in UTC: the same date
    frames: dict[str, pd.DataFrame] = {}
    for col, symbol in enumerate(bars.symbols):
        frame = pd.DataFrame(
            {
                "Open": bars.open[:, col],
                "High": bars.high[:, col],
                "Low": bars.low[:, col],
                "Close": bars.close[:, col],
                "Volume": bars.volume[:, col],
            },
            index=days,
        )
        frame = frame[np.isfinite(frame[["Open", "High", "Low", "Close"]].to_numpy()).all(axis=1)]
        if len(frame) > WINDOW:
            frames[symbol] = frame
    return frames


def pair_fills(fills: list[tuple[date, bool]]) -> list[Trade]:
    """Trades from one symbol's fills in time order, `(fill date, is_buy)`: a buy opens one, the next sell closes it."""
    trades: list[Trade] = []
    entry: date | None = None
    for day, is_buy in fills:
        if is_buy and entry is None:
            entry = day
        elif not is_buy and entry is not None:
            trades.append((entry, day))
            entry = None
    if entry is not None:
        trades.append((entry, None))
    return trades
