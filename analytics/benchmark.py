"""The benchmark a report compares the run with, as growth of $1 per session.

Sim (`EqualWeightBenchmark`): an equal-weight buy-and-hold of the symbols the run could trade (the caller passes them:
`SYMBOLS`, or the whole scanned universe with the scanner). The start capital is split into K equal shares, K the
number of those symbols with a tradable open anywhere in the report's period. A symbol with a bar on the first session
buys its share at that open; for a window that starts after the run's first session (`report --from`), a symbol with a
close on the session before buys at that close instead, where the strategy's returns start too. The share of a symbol
listed later is set aside as cash (earning nothing) and buys at the open of its first bar. Nothing is ever
rebalanced; a symbol whose bars end is held at its last close (as cash). The bundled data is survivorship-biased and
has no ETFs, which `note` says.

Paper/live (`ClosesBenchmark`, via `load_spy_benchmark`): SPY's daily closes from the market-data port the daemon
uses, cached in DATA_DIR; when they cannot be had, no benchmark (a reason instead), never a made-up series.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np

from analytics.model import BenchmarkSummary
from analytics.returns import return_stats
from core.bars import last_valid_row
from core.broker.base import BrokerError, MarketData
from core.timeconv import ny_dates, ny_instant
from core.types import BarFrame, FloatArray

SIM_BENCHMARK_NOTE = (
    "Equal-weight buy-and-hold of the symbols the run could trade, equal dollars at the first session's open, never "
    "rebalanced (a symbol listed later buys its set-aside share at its first open). The bundled data is "
    "survivorship-biased (today's constituents) and has no ETFs, so this is not an index."
)
SPY = "SPY"
_LOOKBACK = timedelta(days=10)  # enough calendar days to find the close before the first session


@dataclass(frozen=True, slots=True)
class BenchmarkSeries:
    name: str
    note: str
    growth: FloatArray  # per session: the value of 1 invested before the first session (NaN before it starts)


class BenchmarkSource(Protocol):
    def series(self, sessions: Sequence[date], *, base: date | None = None) -> BenchmarkSeries | str:
        """The benchmark over `sessions` (ascending), or why there is none. `base`: the session whose close the
        strategy's returns start from (a window that does not start at the run's beginning), so the benchmark starts
        there too; None: the run's own start."""
        ...


def _day_index(bars: BarFrame) -> np.ndarray:
    return ny_dates(bars.timestamps_ns).astype("datetime64[D]")


def _rows_of(days: np.ndarray, sessions: Sequence[date]) -> np.ndarray:
    """For each session, the last row dated on or before it (-1 when none)."""
    wanted = np.array(sessions, dtype="datetime64[D]")
    return np.searchsorted(days, wanted, side="right") - 1


@dataclass(frozen=True, slots=True)
class EqualWeightBenchmark:
    bars: BarFrame
    symbols: tuple[str, ...]

    def series(self, sessions: Sequence[date], *, base: date | None = None) -> BenchmarkSeries | str:
        if not sessions:
            return "no sessions"
        days = _day_index(self.bars)
        first = int(np.searchsorted(days, np.datetime64(sessions[0], "D"), side="left"))
        last = int(np.searchsorted(days, np.datetime64(sessions[-1], "D"), side="right"))
        wanted = set(self.symbols)
        columns = [i for i, symbol in enumerate(self.bars.symbols) if symbol in wanted]
        if first >= last or not columns:
            return "no bars of the universe in the report's period"
        opens = self.bars.open[first:last][:, columns]
        closes = self.bars.close[first:last][:, columns]
        window_days = days[first:last]
        base_row = -1 if base is None else int(np.searchsorted(days, np.datetime64(base, "D"), side="right")) - 1
        if 0 <= base_row < first:
            # Bought at the base session's close (the strategy's returns start there too), as a leading row whose
            # open and close are that close: a symbol without one joins at its first open in the window, as before.
            base_close = self.bars.close[base_row, columns][None, :]
            opens = np.vstack([base_close, opens])
            closes = np.vstack([base_close, closes])
            window_days = np.concatenate([days[base_row : base_row + 1], window_days])
        tradable = np.isfinite(opens) & (opens > 0)
        listed = tradable.any(axis=0)
        opens, closes, tradable = opens[:, listed], closes[:, listed], tradable[:, listed]
        count = int(listed.sum())
        if count == 0:
            return "no tradable open of the universe in the report's period"
        share = 1.0 / count
        join_row = np.argmax(tradable, axis=0)  # each symbol's first tradable open
        take = np.arange(count)
        shares = share / opens[join_row, take]
        # Prices held: the close, or on the joining bar without a close, the open paid; carried forward after.
        prices = closes.copy()
        missing_at_join = ~np.isfinite(prices[join_row, take])
        late_rows, late_columns = join_row[missing_at_join], take[missing_at_join]
        prices[late_rows, late_columns] = opens[late_rows, late_columns]
        rows = last_valid_row(prices)
        carried = np.take_along_axis(prices, np.maximum(rows, 0), axis=0)
        joined = np.arange(prices.shape[0])[:, None] >= join_row[None, :]
        values = np.where(joined, shares[None, :] * carried, share).sum(axis=1)
        session_rows = _rows_of(window_days, sessions)
        growth = np.where(session_rows >= 0, values[np.maximum(session_rows, 0)], 1.0)
        return BenchmarkSeries(f"equal-weight buy-and-hold of {count} symbols", SIM_BENCHMARK_NOTE, growth)


@dataclass(frozen=True, slots=True)
class ClosesBenchmark:
    """A single instrument's daily closes (SPY in paper/live): growth from the last close before the first session."""

    name: str
    days: tuple[date, ...]
    closes: tuple[float, ...]
    note: str = ""

    def series(self, sessions: Sequence[date], *, base: date | None = None) -> BenchmarkSeries | str:
        # Always from the last close before the first session (`base` or not): a single instrument has no open
        # to buy at in the closes, and that close is the strategy's base whenever the window has one.
        if not sessions:
            return "no sessions"
        days = np.array(self.days, dtype="datetime64[D]")
        closes = np.array(self.closes, dtype=np.float64)
        base_row = int(np.searchsorted(days, np.datetime64(sessions[0], "D"), side="left")) - 1
        session_rows = _rows_of(days, sessions)
        if session_rows[-1] < 0 or session_rows[-1] <= base_row:
            return f"no {self.name} closes in the report's period"
        if base_row < 0:
            base_row = int(np.flatnonzero(session_rows >= 0)[0])
            base_row = int(session_rows[base_row])
        growth = np.where(session_rows >= 0, closes[np.maximum(session_rows, 0)] / closes[base_row], np.nan)
        return BenchmarkSeries(self.name, self.note, growth)


@dataclass(frozen=True, slots=True)
class UnavailableBenchmark:
    reason: str

    def series(self, sessions: Sequence[date], *, base: date | None = None) -> BenchmarkSeries | str:
        return self.reason


def summarize(series: BenchmarkSeries) -> BenchmarkSummary:
    """The benchmark's own statistics (from its growth, the same conventions as the run's)."""
    known = series.growth[np.isfinite(series.growth)]
    stats = return_stats(np.concatenate(([1.0], known)))
    return BenchmarkSummary(
        name=series.name,
        note=series.note,
        total_return_pct=stats.total_return_pct,
        cagr_pct=stats.cagr_pct,
        max_drawdown_pct=stats.max_drawdown_pct,
        sharpe=stats.sharpe,
    )


# ---------------------------------------------------------------------------------------------------------------------
# SPY from the market-data port, cached in DATA_DIR
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClosesCache:
    """Closes fetched before: `covers_from` is the earliest day asked (a close may start later: a holiday)."""

    covers_from: date | None
    closes: dict[date, float]


def read_closes_cache(path: Path) -> ClosesCache:
    """The cache (empty when the file is missing or unreadable: a cache is only a cache)."""
    try:
        stored = json.loads(path.read_text())
        closes = {date.fromisoformat(day): float(close) for day, close in stored["closes"].items()}
        return ClosesCache(date.fromisoformat(stored["covers_from"]), closes)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ClosesCache(None, {})


def write_closes_cache(path: Path, cache: ClosesCache) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    covers = None if cache.covers_from is None else cache.covers_from.isoformat()
    closes = {day.isoformat(): cache.closes[day] for day in sorted(cache.closes)}
    tmp.write_text(json.dumps({"symbol": SPY, "covers_from": covers, "closes": closes}))
    os.replace(tmp, path)  # a crash never leaves half a cache


async def load_spy_benchmark(market_data: MarketData, cache_path: Path, start: date, end: date) -> BenchmarkSource:
    """SPY's closes over [start − 10 days, end]: from `cache_path` when it covers them (asked from that day, a close on
    or after `end`), else fetched and the cache extended. When the fetch fails, what the cache has (with a note), or
    `UnavailableBenchmark` saying why."""
    cache = read_closes_cache(cache_path)
    cached = dict(cache.closes)
    want_from = start - _LOOKBACK
    fetch_from: date | None = None
    if not cached or cache.covers_from is None or cache.covers_from > want_from:
        fetch_from = want_from
    elif max(cached) < end:
        fetch_from = max(cached) + timedelta(days=1)
    note = f"{SPY} daily closes from the market-data adapter (cached in {cache_path.name})."
    if fetch_from is not None:
        try:
            bars = await market_data.get_bars([SPY], ny_instant(fetch_from), ny_instant(end + timedelta(days=1)))
        except (BrokerError, OSError) as error:
            if not cached:
                return UnavailableBenchmark(f"{SPY} closes could not be fetched: {error}")
            note = f"{SPY} closes from the cache up to {max(cached)}: the fetch failed ({error})."
        else:
            cached.update(_closes_of(bars, SPY))
            covers = fetch_from if cache.covers_from is None else min(fetch_from, cache.covers_from)
            with contextlib.suppress(OSError):  # the benchmark is still right; the next report fetches again
                write_closes_cache(cache_path, ClosesCache(covers, cached))
    if not cached:
        return UnavailableBenchmark(f"no {SPY} closes from the market-data adapter")
    days = tuple(sorted(cached))
    return ClosesBenchmark(SPY, days, tuple(cached[d] for d in days), note)


def _closes_of(bars: BarFrame, symbol: str) -> dict[date, float]:
    if symbol not in bars.symbols:
        return {}
    column = bars.symbols.index(symbol)
    days = ny_dates(bars.timestamps_ns).astype("datetime64[D]").tolist()
    return {
        day: float(close)
        for day, close in zip(days, bars.close[:, column].tolist(), strict=True)
        if np.isfinite(close) and close > 0
    }
