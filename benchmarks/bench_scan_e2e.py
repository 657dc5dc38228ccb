"""The whole-market daily scan end to end: 10,000 symbols of real series, every stage from universe to output.

The market is built like `bench_scan`'s: the 505 bundled series over shifted 252-session windows (window k starts
50 sessions after window k-1), so every column is a real price/volume path. Each symbol-window gets a name the scan
takes (`AAPL.C`: the base symbol and a class letter per window), and the sector and market cap of its base symbol from
the bundled constituents file. Everything is in memory: the universe, snapshots and bars (a `ReplayMarketData` over the
built frame, at the scan time of its last session) and the 20-day averages (`RollingVolumes`).

It times `DailyScanner.run` (universe → prescreen → snapshot → prerank → rvol → bars → rank → explosion → output) in
the same run two ways, with the scan defaults of `Settings` (market cap, sector floors, price to dollar volume,
volatility):

- `incremental`: averages from the in-memory window, array snapshots, static checks once per universe (the daemon's
  steady state: the first, cold scan is reported on its own);
- `sqlite_objects` (the path before): averages read from a SQLite volume cache, one `Snapshot` object per symbol,
  static checks recomputed each scan (a new universe object each time).

It also reports reading the 10,000-row universe CSV (`read_universe_file`), which the daemon does once per file
version. Target (issue 13): < 20 ms end to end.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.daily_scan import DailyScanner, ScanResult
from config.settings import Settings
from core.bars import load_daily_bars
from core.broker.base import MarketData, Snapshot
from core.broker.replay import ReplayMarketData
from core.clock import NyseCalendar, SimClock
from core.logging import configure_logging
from core.rolling_volumes import RollingVolumes
from core.timeconv import ny_dates
from core.types import BarFrame
from core.universe import LoadedUniverse, Universe, read_universe_file
from core.volume_cache import VolumeCache, VolumeLookup, cache_target
from tradingd.configs import scan_config, select_strategy

DATA = Path(__file__).resolve().parent.parent / "data"
DATA_FILE = DATA / "sp500_daily_2013_2018.csv.xz"
CONSTITUENTS = DATA / "sp500_constituents_2018-02.csv"
N_SYMBOLS = 10_000
BARS = 252
WINDOW_STEP = 50


def build_market(history: BarFrame, n: int) -> tuple[BarFrame, Universe]:
    """n real symbol-windows over the last window's 252 sessions, and their universe (sector and cap of the base)."""
    windows = math.ceil(n / history.n_symbols)
    last_start = history.n_rows - BARS
    starts = [last_start - k * WINDOW_STEP for k in range(windows)]
    if starts[-1] < 0:
        raise ValueError(f"{n} symbols need {windows} windows; the data has room for fewer")

    def stack(values: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.hstack([values[s : s + BARS] for s in starts])[:, :n])

    names = [f"{symbol}.{chr(ord('A') + k)}" for k in range(windows) for symbol in history.symbols][:n]
    frame = BarFrame(
        symbols=tuple(names),
        timestamps=history.timestamps[last_start : last_start + BARS],
        open=stack(history.open),
        high=stack(history.high),
        low=stack(history.low),
        close=stack(history.close),
        volume=stack(history.volume),
    )
    base = read_universe_file(CONSTITUENTS).frame.set_index("symbol")
    bases = [name.rsplit(".", 1)[0] for name in names]
    universe_frame = pd.DataFrame(
        {
            "symbol": pd.Series(names, dtype=object),
            "sector": base["sector"].reindex(bases).to_numpy(dtype=object),
            "market_cap": base["market_cap"].reindex(bases).to_numpy(dtype=np.float64),
        }
    )
    return frame, Universe(universe_frame, has_market_cap=True, source=f"memory:{n}")


class _ObjectSnapshots:
    """The replay without its array fast path: one `Snapshot` object per symbol, as before."""

    def __init__(self, inner: ReplayMarketData) -> None:
        self._inner = inner

    @property
    def api_calls(self) -> int:
        return self._inner.api_calls

    async def get_bars(self, *args: Any, **kwargs: Any) -> BarFrame:
        return await self._inner.get_bars(*args, **kwargs)

    async def get_snapshots(self, symbols: Any) -> dict[str, Snapshot]:
        return await self._inner.get_snapshots(symbols)


def _median_ms(run: Callable[[], Coroutine[Any, Any, ScanResult]], repeats: int) -> tuple[float, ScanResult]:
    times: list[float] = []
    result: ScanResult | None = None
    for _ in range(repeats):
        t = time.perf_counter()
        result = asyncio.run(run())
        times.append((time.perf_counter() - t) * 1000)
    assert result is not None
    return statistics.median(times), result


def _stage_medians(results: list[ScanResult]) -> dict[str, float]:
    names = [s.name for s in results[0].stages]
    return {name: round(statistics.median(r.stage(name).ms for r in results), 3) for name in names}


def run(n: int = N_SYMBOLS, repeats: int = 30, before_repeats: int = 10) -> dict[str, Any]:
    configure_logging("json", "ERROR")
    history = load_daily_bars(DATA_FILE)
    frame, universe = build_market(history, n)
    calendar = NyseCalendar()
    settings = Settings()
    strategy = select_strategy(settings)  # the daemon's ranking: the default strategy's entry score
    as_of = date.fromisoformat(str(ny_dates(frame.timestamps[-1:])[0]))
    clock = SimClock(calendar.scan_time(as_of))
    market = ReplayMarketData(frame, clock)
    config = scan_config(settings)
    through = cache_target(calendar, as_of)

    rolling = RollingVolumes()
    asyncio.run(rolling.advance(market, calendar, universe.symbols, through))
    now = clock.now()

    def scanner(md: MarketData, volumes: VolumeLookup) -> DailyScanner:
        return DailyScanner(md, volumes, calendar, config, strategy=strategy)

    fast = scanner(market, rolling)
    t = time.perf_counter()
    first = asyncio.run(fast.run(LoadedUniverse(universe), as_of=as_of, now=now))
    cold_ms = (time.perf_counter() - t) * 1000
    results: list[ScanResult] = []

    async def incremental() -> ScanResult:
        result = await fast.run(LoadedUniverse(universe), as_of=as_of, now=now)
        results.append(result)
        return result

    fast_ms, fast_result = _median_ms(incremental, repeats)

    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "universe.csv"
        universe.frame.rename(columns={"symbol": "Symbol", "sector": "Sector", "market_cap": "Market Cap"}).to_csv(
            csv_path, index=False
        )
        t = time.perf_counter()
        read_universe_file(csv_path)
        parse_ms = (time.perf_counter() - t) * 1000
        with VolumeCache(Path(tmp) / "volume_cache.db") as cache:
            assert rolling.averages is not None
            cache.replace_all(rolling.symbols, through, rolling.averages, now=now)
            slow = scanner(_ObjectSnapshots(market), cache)  # type: ignore[arg-type]

            async def before() -> ScanResult:
                fresh = Universe(universe.frame, universe.has_market_cap, universe.source)  # static checks again
                return await slow.run(LoadedUniverse(fresh), as_of=as_of, now=now)

            slow_ms, slow_result = _median_ms(before, before_repeats)

    stats = fast_result.stats
    return {
        "symbols": n,
        "as_of": as_of.isoformat(),
        "incremental_median_ms": round(fast_ms, 3),
        "incremental_first_scan_ms": round(cold_ms, 3),
        "sqlite_objects_median_ms": round(slow_ms, 3),
        "speedup": round(slow_ms / fast_ms, 2),
        "same_candidates": [c.symbol for c in fast_result.candidates] == [c.symbol for c in slow_result.candidates]
        and [c.symbol for c in first.candidates] == [c.symbol for c in fast_result.candidates],
        "stage_median_ms": _stage_medians(results),
        "universe_csv_parse_ms": round(parse_ms, 3),
        "rejected": stats["rejected"],
        "skipped_filters": stats["skipped_filters"],
        "candidates": len(fast_result.candidates),
        "target": "10,000 symbols, universe to output, < 20 ms",
    }


if __name__ == "__main__":
    print(run())
