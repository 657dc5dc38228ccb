"""The bars the fake Alpaca server serves: the bundled real daily data, one array set per symbol.

Daily bars are stamped like Alpaca's: the bar *start*, midnight America/New_York, expressed in UTC.
The 11 rows of the bundled file with empty open/high/low are left out: a real feed has no such bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.timeconv import ns_to_datetime, ny_midnights

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA_FILE = PROJECT_ROOT / "data" / "sp500_daily_2013_2018.csv.xz"
CONSTITUENTS_FILE = PROJECT_ROOT / "data" / "sp500_constituents_2018-02.csv"
DAY_NS = 86_400 * 10**9
OPEN_OFFSET_NS = (9 * 3600 + 30 * 60) * 10**9  # 09:30 ET after the bar's midnight-ET start
CLOSE_OFFSET_NS = 16 * 3600 * 10**9


@dataclass(frozen=True, slots=True)
class SymbolTape:
    t: npt.NDArray[np.int64]  # bar start, UTC nanoseconds, strictly increasing
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.t.shape[0])


@dataclass(frozen=True, slots=True)
class MarketTape:
    bars: dict[str, SymbolTape]
    sessions: tuple[date, ...]  # every trading date in the file, ascending
    session_t: npt.NDArray[np.int64]  # each session's bar start (midnight ET) in UTC ns

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.bars)

    def session_start(self, day: date) -> datetime:
        index = self.sessions.index(day)
        return ns_to_datetime(int(self.session_t[index]))


def largest_symbols(count: int, path: Path = CONSTITUENTS_FILE) -> list[str]:
    """The `count` largest constituents by market cap (the sim default universe is built the same way)."""
    frame = pd.read_csv(path)
    return list(frame.sort_values("Market Cap", ascending=False)["Symbol"].head(count))


def load_tape(symbols: Sequence[str] | None = None, path: Path = DATA_FILE) -> MarketTape:
    frame = pd.read_csv(path)
    all_dates = sorted(frame["date"].unique())
    if symbols is not None:
        frame = frame[frame["symbol"].isin(list(symbols))]
    frame = frame.dropna(subset=["open", "high", "low", "close", "volume"]).sort_values(["symbol", "date"])

    session_t = ny_midnights(pd.to_datetime(all_dates)).view(np.int64)
    t_by_date = dict(zip(all_dates, session_t, strict=True))

    bars: dict[str, SymbolTape] = {}
    for symbol, group in frame.groupby("symbol", sort=True):
        bars[str(symbol)] = SymbolTape(
            t=np.array([t_by_date[d] for d in group["date"]], dtype=np.int64),
            open=group["open"].to_numpy(dtype=np.float64),
            high=group["high"].to_numpy(dtype=np.float64),
            low=group["low"].to_numpy(dtype=np.float64),
            close=group["close"].to_numpy(dtype=np.float64),
            volume=group["volume"].to_numpy(dtype=np.float64),
        )
    sessions = tuple(date.fromisoformat(d) for d in all_dates)
    return MarketTape(bars=bars, sessions=sessions, session_t=session_t)
