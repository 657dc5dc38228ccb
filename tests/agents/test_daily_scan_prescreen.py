"""Tests for the pre-screen defaults of agents/daily_scan.py (market cap, sector floors by any sector scheme, price to
dollar volume, volatility), the skipped-filter counts, the once-per-universe static checks and the array snapshots."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from agents.daily_scan import (
    ScanConfig,
    fetch_snapshot_arrays,
    prescreen,
    snapshot_arrays,
    static_screening,
)
from config.settings import DEFAULT_SECTOR_FLOORS, Settings
from core.broker.replay import ReplayMarketData
from core.clock import NyseCalendar, SimClock
from core.sectors import CANONICAL_SECTORS, canonical_sector
from core.types import BarFrame
from core.universe import Universe, read_universe_file
from core.volume_cache import VolumeCache
from tradingd.configs import scan_config

DATA = Path(__file__).resolve().parents[2] / "data"
CONSTITUENTS = DATA / "sp500_constituents_2018-02.csv"
AS_OF = date(2018, 2, 7)
THROUGH = date(2018, 2, 6)
SCANNABLE = ("AAPL", "MSFT", "DHR", "XOM", "JPM", "FTV")


def universe_of(rows: Sequence[tuple[str, str | None, float]]) -> Universe:
    frame = pd.DataFrame(
        {
            "symbol": [r[0] for r in rows],
            "sector": pd.Series([r[1] if r[1] is not None else pd.NA for r in rows], dtype=object),
            "market_cap": np.array([r[2] for r in rows], dtype=np.float64),
        }
    )
    return Universe(frame, has_market_cap=True, source="test")


def list_universe(symbols: Sequence[str]) -> Universe:
    frame = pd.DataFrame({"symbol": list(symbols), "sector": [pd.NA] * len(symbols), "market_cap": np.nan})
    frame["sector"] = frame["sector"].astype(object)
    return Universe(frame, has_market_cap=False, source="list")


def test_every_gics_sector_of_the_bundled_file_maps_onto_a_floor() -> None:
    sectors = set(read_universe_file(CONSTITUENTS).frame["sector"])
    assert {canonical_sector(s) for s in sectors} <= set(CANONICAL_SECTORS)
    assert None not in {canonical_sector(s) for s in sectors}
    assert set(DEFAULT_SECTOR_FLOORS) == set(CANONICAL_SECTORS)
    assert canonical_sector("  health   CARE ") == "Healthcare"
    assert canonical_sector("Crypto") is None


def test_defaults_are_the_plans_and_reach_the_scan() -> None:
    config = scan_config(Settings())
    assert config.min_market_cap == 150e6
    assert config.sector_min_market_cap["Utilities"] == 500e6
    assert config.max_price_to_dollar_volume == 0.0001
    assert config.max_prescreen_volatility == 0.15
    assert Settings(scan_sector_min_market_cap="none").scan_sector_min_market_cap == {}


def test_a_gics_sector_name_meets_its_canonical_floor(cache: VolumeCache) -> None:
    # Utilities $500M: a $400M utility goes, a $400M industrial ($150M floor) stays; "Health Care" is Healthcare.
    universe = universe_of(
        [
            ("AAPL", "Utilities", 400e6),
            ("MSFT", "Industrials", 400e6),
            ("DHR", "Health Care", 199e6),
            ("XOM", "Crypto", 1e6),
            ("JPM", None, 1e9),
        ]
    )
    config = ScanConfig(min_market_cap=0.0, sector_min_market_cap=DEFAULT_SECTOR_FLOORS)
    screened = prescreen(universe, cache.lookup(universe.symbols), THROUGH, config)
    assert [universe.symbols[i] for i in screened.index] == ["MSFT", "XOM", "JPM"]
    assert screened.rejected == {"sector_floor": 2}
    assert screened.skipped == {"sector_floor": 2}  # an unknown sector and no sector: no floor, counted


def test_without_market_caps_the_cap_filters_are_skipped_and_counted(cache: VolumeCache) -> None:
    universe = list_universe(SCANNABLE)
    config = ScanConfig(min_market_cap=150e6, sector_min_market_cap=DEFAULT_SECTOR_FLOORS)
    screened = prescreen(universe, cache.lookup(SCANNABLE), THROUGH, config)
    assert screened.index.size == len(SCANNABLE)
    assert screened.skipped == {"market_cap": len(SCANNABLE)}


def test_price_to_dollar_volume_boundary_on_real_values(cache: VolumeCache) -> None:
    universe = list_universe(["MSFT"])
    cached = cache.lookup(["MSFT"])
    ratio = float(cached.last_close[0] / cached.avg_dollar_volume[0])
    assert prescreen(universe, cached, THROUGH, ScanConfig(max_price_to_dollar_volume=ratio)).index.size == 1
    thin = prescreen(universe, cached, THROUGH, ScanConfig(max_price_to_dollar_volume=math.nextafter(ratio, 0)))
    assert thin.rejected == {"price_to_dollar_volume": 1}


def test_volatility_boundary_and_unknown_volatility_is_skipped_and_counted(cache: VolumeCache) -> None:
    universe = list_universe(["MSFT", "XOM"])
    cached = cache.lookup(["MSFT", "XOM"])
    vol = float(cached.volatility[0])
    assert 0 < vol < 0.15
    assert 0 in prescreen(universe, cached, THROUGH, ScanConfig(max_prescreen_volatility=vol)).index.tolist()
    wild = prescreen(universe, cached, THROUGH, ScanConfig(max_prescreen_volatility=math.nextafter(vol, 0)))
    assert 0 not in wild.index.tolist()
    assert wild.rejected["volatility_above_max"] >= 1
    cache.put(["XOM"], THROUGH, np.ones(1), np.full(1, 1e9), np.ones(1) * 10, now=pd.Timestamp(AS_OF, tz="UTC"))
    unknown = prescreen(universe, cache.lookup(["MSFT", "XOM"]), THROUGH, ScanConfig(max_prescreen_volatility=1.0))
    assert unknown.index.size == 2
    assert unknown.skipped == {"volatility": 1}


def test_static_checks_run_once_per_universe() -> None:
    universe = read_universe_file(CONSTITUENTS)
    config = ScanConfig()
    first = static_screening(universe, config)
    assert static_screening(universe, config) is first
    assert static_screening(read_universe_file(CONSTITUENTS), config) is not first  # a new universe: recomputed


async def test_array_snapshots_equal_the_snapshot_objects(small_history: BarFrame, calendar: NyseCalendar) -> None:
    # At 2016-07-05's scan time: FTV has no bar yet, DHR and O have real empty rows somewhere; an unknown symbol too.
    symbols = ["FTV", "AAPL", "NOPE", "DHR", "O", "XOM"]
    for day in (date(2016, 7, 5), AS_OF):
        market = ReplayMarketData(small_history, SimClock(calendar.scan_time(day)))
        fast = await fetch_snapshot_arrays(market, symbols, day)
        slow = snapshot_arrays(await market.get_snapshots(symbols), symbols, day)
        for name in ("present", "current", "price", "prev_close", "volume"):
            np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name), err_msg=name)
