"""BarCache: bars and coverage survive a restart; a bad file is set aside and the cache starts empty."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from core.broker.bar_cache import BarCache, CacheKey, CleanBars, Coverage
from tests.fakes.damage import DAMAGE, assert_set_aside, damage, foreign_database

DAY_NS = 86_400 * 10**9
T0 = 1_500_000_000 * 10**9


def _bars(n: int, first: float = 100.0) -> CleanBars:
    t = T0 + DAY_NS * np.arange(n, dtype=np.int64)
    close = first + np.arange(n, dtype=np.float64)
    return CleanBars(t, np.column_stack([close, close + 1, close - 1, close, np.full(n, 1e6)]))


def _key(symbol: str) -> CacheKey:
    return CacheKey(symbol, "1Day", "iex/split")


def _filled(path: Path, symbols: int = 40, bars: int = 250) -> BarCache:
    cache = BarCache(path)
    span = Coverage(T0, T0 + DAY_NS * bars)
    cache.store({_key(f"S{i:02d}"): (_bars(bars, 100.0 + i), span) for i in range(symbols)})
    return cache


def test_bars_and_coverage_survive_a_restart(tmp_path: Path) -> None:
    _filled(tmp_path / "bars.sqlite", symbols=3, bars=10).close()
    cache = BarCache(tmp_path / "bars.sqlite")
    assert cache.coverage(_key("S01")) == Coverage(T0, T0 + DAY_NS * 10)
    np.testing.assert_array_equal(cache.bars(_key("S01")).values, _bars(10, 101.0).values)
    cache.close()


def test_a_newer_bar_replaces_the_cached_one_at_the_same_time(tmp_path: Path) -> None:
    cache = _filled(tmp_path / "bars.sqlite", symbols=1, bars=5)
    cache.store({_key("S00"): (_bars(2, 500.0), Coverage(T0, T0 + 2 * DAY_NS))})
    cache.close()
    again = BarCache(tmp_path / "bars.sqlite")
    assert again.bars(_key("S00")).values[:, 3].tolist() == [500.0, 501.0, 102.0, 103.0, 104.0]
    assert again.coverage(_key("S00")) == Coverage(T0, T0 + 5 * DAY_NS)
    again.close()


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_cache_file_is_set_aside_and_the_cache_starts_empty(tmp_path: Path, how: str) -> None:
    path = tmp_path / "bars.sqlite"
    _filled(path).close()
    content = damage(path, how)

    with capture_logs() as logs:
        cache = BarCache(path)
    assert cache.coverage(_key("S01")) is None
    assert len(cache.bars(_key("S01"))) == 0
    cache.store({_key("AAPL"): (_bars(3), Coverage(T0, T0 + 3 * DAY_NS))})  # and it keeps working
    cache.close()
    reopened = BarCache(path)
    assert len(reopened.bars(_key("AAPL"))) == 3
    reopened.close()

    assert_set_aside(path, content, logs, "bar_cache_corrupt")


def test_a_file_with_someone_elses_bars_table_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "bars.sqlite"
    content = foreign_database(path, "CREATE TABLE bars (symbol TEXT, close REAL)", "INSERT INTO bars VALUES ('X', 1)")
    with capture_logs() as logs:
        cache = BarCache(path)
    assert cache.coverage(_key("S01")) is None
    cache.close()
    assert_set_aside(path, content, logs, "bar_cache_corrupt")
