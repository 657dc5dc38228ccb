"""The benchmarks: the sim's equal-weight buy-and-hold (checked by hand on real bars, a symbol listed later included)
and SPY from a market-data port, cached, or no benchmark with the reason."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from analytics.benchmark import (
    SIM_BENCHMARK_NOTE,
    BenchmarkSeries,
    ClosesBenchmark,
    EqualWeightBenchmark,
    UnavailableBenchmark,
    load_spy_benchmark,
    read_closes_cache,
    summarize,
)
from core.broker.base import Progress, Snapshot, TransientBrokerError
from core.timeconv import ny_dates, ny_midnights
from core.types import BarFrame


def _sessions(history: BarFrame, start: date, end: date) -> list[date]:
    days = [d.item() if hasattr(d, "item") else d for d in ny_dates(history.timestamps_ns).astype("datetime64[D]")]
    return [d for d in days if start <= d <= end]


def test_equal_weight_buy_and_hold_by_hand_with_a_symbol_listed_later(small_history: BarFrame) -> None:
    universe = ("AAPL", "MSFT", "FTV")  # FTV's first bar is 2016-07-05
    sessions = _sessions(small_history, date(2016, 6, 20), date(2016, 7, 29))
    series = EqualWeightBenchmark(small_history, universe).series(sessions)
    assert isinstance(series, BenchmarkSeries)

    # By hand: a third of $1 each; AAPL and MSFT buy at the first session's open, FTV's third waits as cash.
    rows = [small_history.symbols.index(s) for s in universe]
    day_rows = {d: i for i, d in enumerate(_sessions(small_history, date(2013, 1, 1), date(2018, 12, 31)))}
    first = day_rows[sessions[0]]
    ftv_first = day_rows[date(2016, 7, 5)]
    shares = [
        (1 / 3) / float(small_history.open[first, rows[0]]),
        (1 / 3) / float(small_history.open[first, rows[1]]),
        (1 / 3) / float(small_history.open[ftv_first, rows[2]]),
    ]
    expected = []
    for session in sessions:
        row = day_rows[session]
        ftv = shares[2] * float(small_history.close[row, rows[2]]) if row >= ftv_first else 1 / 3
        expected.append(
            shares[0] * float(small_history.close[row, rows[0]])
            + shares[1] * float(small_history.close[row, rows[1]])
            + ftv
        )
    assert series.growth.tolist() == pytest.approx(expected, rel=1e-12)
    assert series.name == "equal-weight buy-and-hold of 3 symbols"
    assert "survivorship" in series.note
    assert series.note == SIM_BENCHMARK_NOTE


def test_a_window_with_a_base_buys_at_the_close_before_it_like_the_strategys_returns(small_history: BarFrame) -> None:
    # `report --from 2016-06-20`: the strategy's returns start at the close of 2016-06-17, so must the benchmark's.
    universe = ("AAPL", "MSFT", "FTV")  # FTV has no bar yet on the base session: it joins at its first open
    sessions = _sessions(small_history, date(2016, 6, 20), date(2016, 7, 29))
    base = date(2016, 6, 17)
    series = EqualWeightBenchmark(small_history, universe).series(sessions, base=base)
    assert isinstance(series, BenchmarkSeries)

    rows = [small_history.symbols.index(s) for s in universe]
    day_rows = {d: i for i, d in enumerate(_sessions(small_history, date(2013, 1, 1), date(2018, 12, 31)))}
    ftv_first = day_rows[date(2016, 7, 5)]
    shares = [
        (1 / 3) / float(small_history.close[day_rows[base], rows[0]]),
        (1 / 3) / float(small_history.close[day_rows[base], rows[1]]),
        (1 / 3) / float(small_history.open[ftv_first, rows[2]]),
    ]
    expected = []
    for session in sessions:
        row = day_rows[session]
        ftv = shares[2] * float(small_history.close[row, rows[2]]) if row >= ftv_first else 1 / 3
        expected.append(
            shares[0] * float(small_history.close[row, rows[0]])
            + shares[1] * float(small_history.close[row, rows[1]])
            + ftv
        )
    assert series.growth.tolist() == pytest.approx(expected, rel=1e-12)
    # The first session's growth is its close over the base close, not over its own open.
    without_base = EqualWeightBenchmark(small_history, universe).series(sessions)
    assert isinstance(without_base, BenchmarkSeries)
    assert series.growth[0] != pytest.approx(without_base.growth[0], rel=1e-9)


def test_a_symbol_without_bars_in_the_period_is_not_counted(small_history: BarFrame) -> None:
    sessions = _sessions(small_history, date(2014, 3, 3), date(2014, 3, 31))
    series = EqualWeightBenchmark(small_history, ("AAPL", "FTV", "NOPE")).series(sessions)
    assert isinstance(series, BenchmarkSeries)
    assert series.name == "equal-weight buy-and-hold of 1 symbols"  # FTV starts in 2016, NOPE is not in the data
    assert EqualWeightBenchmark(small_history, ("FTV",)).series(sessions) == (
        "no tradable open of the universe in the report's period"
    )


def test_summary_uses_the_run_conventions() -> None:
    summary = summarize(BenchmarkSeries("x", "", np.array([1.1, 0.99, 1.21])))
    assert summary.total_return_pct == pytest.approx(21.0)
    assert summary.max_drawdown_pct == pytest.approx(10.0)


def test_closes_benchmark_grows_from_the_close_before_the_first_session() -> None:
    bench = ClosesBenchmark("SPY", (date(2016, 1, 4), date(2016, 1, 5), date(2016, 1, 7)), (200.0, 210.0, 190.0))
    series = bench.series([date(2016, 1, 5), date(2016, 1, 6), date(2016, 1, 7)])
    assert isinstance(series, BenchmarkSeries)
    assert series.growth.tolist() == pytest.approx([1.05, 1.05, 0.95])  # 01-06 has no close: the last one carries
    assert bench.series([date(2017, 1, 3)]) == "no SPY closes in the report's period"


class FakeData:
    """A market-data port with SPY closes on three days, or failing."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.asked: list[tuple[datetime, datetime]] = []

    async def get_bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, *, on_progress: Progress | None = None
    ) -> BarFrame:
        self.asked.append((start, end))
        if self.fail:
            raise TransientBrokerError("HTTP 503")
        days = np.array(["2016-01-04", "2016-01-05", "2016-01-06"], dtype="datetime64[D]")
        closes = np.array([[200.0], [202.0], [204.0]])
        return BarFrame(("SPY",), ny_midnights(days), closes, closes, closes, closes, np.ones((3, 1)))

    async def get_snapshots(self, symbols: Sequence[str]) -> dict[str, Snapshot]:
        return {}

    @property
    def api_calls(self) -> int:
        return len(self.asked)


def test_spy_is_fetched_once_cached_and_the_cache_serves_when_the_fetch_fails(tmp_path: Path) -> None:
    cache = tmp_path / "benchmark_spy.csv"
    data = FakeData()
    bench = asyncio.run(load_spy_benchmark(data, cache, date(2016, 1, 5), date(2016, 1, 6)))
    assert isinstance(bench, ClosesBenchmark)
    stored = read_closes_cache(cache)
    assert stored.closes == {date(2016, 1, 4): 200.0, date(2016, 1, 5): 202.0, date(2016, 1, 6): 204.0}
    assert stored.covers_from == date(2015, 12, 26)
    series = bench.series([date(2016, 1, 5), date(2016, 1, 6)])
    assert isinstance(series, BenchmarkSeries)
    assert series.growth.tolist() == pytest.approx([1.01, 1.02])

    again = asyncio.run(load_spy_benchmark(data, cache, date(2016, 1, 5), date(2016, 1, 6)))
    assert data.api_calls == 1  # the cache covers the period
    assert again == bench

    failing = asyncio.run(load_spy_benchmark(FakeData(fail=True), cache, date(2016, 1, 5), date(2016, 1, 8)))
    assert isinstance(failing, ClosesBenchmark)
    assert "the fetch failed (HTTP 503)" in failing.note


def test_no_spy_and_no_cache_is_no_benchmark_with_the_reason(tmp_path: Path) -> None:
    bench = asyncio.run(load_spy_benchmark(FakeData(fail=True), tmp_path / "b.csv", date(2016, 1, 5), date(2016, 1, 6)))
    assert bench == UnavailableBenchmark("SPY closes could not be fetched: HTTP 503")
    assert bench.series([date(2016, 1, 5)]) == "SPY closes could not be fetched: HTTP 503"
