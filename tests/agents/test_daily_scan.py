"""Tests for agents/daily_scan.py, stage by stage on real bundled bars (2018-02-07, the last bundled session).

Boundaries are tested by moving the threshold onto a real value (passes) and one ulp past it (fails), never by
inventing market data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.daily_scan import (
    DailyScanner,
    ScanConfig,
    SnapshotArrays,
    prerank,
    prescreen,
    rank,
    rvol_filter,
    snapshot_arrays,
    static_screen,
)
from agents.scan_scoring import top_k
from agents.strategies.zscore_mean_reversion import zscore
from config.settings import Settings
from core.broker.replay import ReplayMarketData
from core.candidates import validate_candidates
from core.clock import NyseCalendar
from core.daily_window import fetch_daily_window, last_sessions
from core.types import BarFrame, FloatArray
from core.universe import Universe, read_universe_file
from core.volume_cache import VolumeCache
from tests.frames import frame_at
from tradingd.configs import select_strategy

FIELDS = ("open", "high", "low", "close", "volume")

DATA = Path(__file__).resolve().parents[2] / "data"
CONSTITUENTS = DATA / "sp500_constituents_2018-02.csv"
AS_OF = date(2018, 2, 7)
THROUGH = date(2018, 2, 6)
SCANNABLE = ("AAPL", "MSFT", "DHR", "XOM", "JPM", "FTV")  # the small history minus "O" (single letter)


class _Source:
    def __init__(self, universe: Universe) -> None:
        self.universe = universe

    async def load(self) -> Universe:
        return self.universe


def small_universe(symbols: Sequence[str] = ("AAPL", "MSFT", "DHR", "O", "XOM", "JPM", "FTV")) -> Universe:
    full = read_universe_file(CONSTITUENTS)
    frame = full.frame[full.frame["symbol"].isin(symbols)].reset_index(drop=True)
    return Universe(frame, has_market_cap=True, source="test")


def list_universe(symbols: Sequence[str]) -> Universe:
    frame = pd.DataFrame({"symbol": list(symbols), "sector": [pd.NA] * len(symbols), "market_cap": np.nan})
    frame["sector"] = frame["sector"].astype(object)
    return Universe(frame, has_market_cap=False, source="list")


def cap_of(symbol: str) -> float:
    frame = read_universe_file(CONSTITUENTS).frame
    return float(frame.loc[frame["symbol"] == symbol, "market_cap"].iloc[0])


# ---- pre-screen -----------------------------------------------------------------------------------------------------


def test_symbol_rule_drops_single_letters_and_odd_names_keeps_share_classes() -> None:
    universe = list_universe(["AAPL", "O", "BRK.B", "BF.B", "GOOGL", "ABCDEF", "AB1", "T", "SPY", "XYZ.WS", "zz"])
    kept = static_screen(universe, ScanConfig())
    # A universe file upper-cases its symbols; a lower-case name reaching the rule is odd.
    assert kept == ["AAPL", "BRK.B", "BF.B", "GOOGL", "SPY"]


def test_market_cap_floor_boundary_on_real_caps(cache: VolumeCache) -> None:
    universe = small_universe()
    cached = cache.lookup(universe.symbols)
    aapl = cap_of("AAPL")  # the largest of the seven
    at = prescreen(universe, cached, THROUGH, ScanConfig(min_market_cap=aapl))
    assert [universe.symbols[i] for i in at.index] == ["AAPL"]
    above = prescreen(universe, cached, THROUGH, ScanConfig(min_market_cap=math.nextafter(aapl, math.inf)))
    assert above.index.size == 0
    assert above.rejected["market_cap_below_min"] == 6  # "O" goes out first, as an odd symbol
    assert above.rejected["odd_symbol"] == 1


def test_market_cap_floor_does_not_apply_when_the_universe_has_no_caps(cache: VolumeCache) -> None:
    universe = list_universe(SCANNABLE)
    screened = prescreen(universe, cache.lookup(SCANNABLE), THROUGH, ScanConfig(min_market_cap=1e15))
    assert screened.index.size == len(SCANNABLE)


def test_unknown_market_cap_is_rejected_when_a_floor_applies(tmp_path: Path, cache: VolumeCache) -> None:
    path = tmp_path / "universe.csv"
    path.write_text("Symbol,Sector,Market Cap\nAAPL,Information Technology,809508034020\nXOM,Energy,\n")
    universe = read_universe_file(path)
    screened = prescreen(universe, cache.lookup(universe.symbols), THROUGH, ScanConfig(min_market_cap=1.0))
    assert [universe.symbols[i] for i in screened.index] == ["AAPL"]
    assert screened.rejected == {"market_cap_unknown": 1}


def test_sector_floor_applies_to_its_sector_only(cache: VolumeCache) -> None:
    universe = small_universe()
    config = ScanConfig(sector_min_market_cap={"Energy": math.nextafter(cap_of("XOM"), math.inf)})
    screened = prescreen(universe, cache.lookup(universe.symbols), THROUGH, config)
    kept = {universe.symbols[i] for i in screened.index}
    assert "XOM" not in kept
    assert kept == set(SCANNABLE) - {"XOM"}
    assert screened.rejected["sector_floor"] == 1


def test_price_and_dollar_volume_boundaries_use_the_cached_values(cache: VolumeCache) -> None:
    universe = list_universe(["MSFT"])
    cached = cache.lookup(["MSFT"])
    close = float(cached.last_close[0])  # MSFT closed at 91.33 on 2018-02-06
    assert close == pytest.approx(91.33)
    assert prescreen(universe, cached, THROUGH, ScanConfig(min_price=close)).index.size == 1
    below = prescreen(universe, cached, THROUGH, ScanConfig(min_price=math.nextafter(close, math.inf)))
    assert below.rejected == {"price_below_min": 1}
    dollars = float(cached.avg_dollar_volume[0])
    assert prescreen(universe, cached, THROUGH, ScanConfig(min_dollar_volume=dollars)).index.size == 1
    thin = prescreen(universe, cached, THROUGH, ScanConfig(min_dollar_volume=math.nextafter(dollars, math.inf)))
    assert thin.rejected == {"dollar_volume_below_min": 1}


def test_symbol_without_cached_average_is_skipped_and_counted(cache: VolumeCache) -> None:
    cache.delete(["JPM"])
    universe = small_universe()
    screened = prescreen(universe, cache.lookup(universe.symbols), THROUGH, ScanConfig())
    assert "JPM" not in {universe.symbols[i] for i in screened.index}
    assert screened.rejected["no_cached_average"] == 1
    assert screened.cache["looked_up"] == 6
    assert screened.cache["hits"] == 5
    assert screened.cache["hit_rate"] == pytest.approx(5 / 6, abs=1e-4)


def test_stale_or_future_cache_entries_are_never_used(cache: VolumeCache) -> None:
    universe = list_universe(SCANNABLE)
    cached = cache.lookup(SCANNABLE)  # through 2018-02-06
    later = prescreen(universe, cached, date(2018, 2, 7), ScanConfig())  # a scan of 2018-02-08 would want this
    earlier = prescreen(universe, cached, date(2018, 2, 5), ScanConfig())  # a scan of 2018-02-06 would want this
    assert later.index.size == 0
    assert later.rejected == {"cache_stale": 6}
    assert earlier.index.size == 0
    assert earlier.rejected == {"cache_ahead": 6}


# ---- snapshot, pre-rank, RVOL, rank -------------------------------------------------------------------------------


async def real_snapshot(market: ReplayMarketData, symbols: Sequence[str], as_of: date = AS_OF) -> SnapshotArrays:
    return snapshot_arrays(await market.get_snapshots(list(symbols)), symbols, as_of)


async def test_prerank_keeps_the_top_momentum_computed_as_specified(
    market: ReplayMarketData, small_history: BarFrame
) -> None:
    snap = await real_snapshot(market, SCANNABLE)
    result = prerank(snap, ScanConfig(prerank_keep=3))
    close = pd.DataFrame(small_history.close, columns=small_history.symbols)[list(SCANNABLE)]
    volume = pd.DataFrame(small_history.volume, columns=small_history.symbols)[list(SCANNABLE)]
    expected = ((close.iloc[-1] / close.iloc[-2] - 1).abs() * 100 * 2 + np.log(volume.iloc[-1])).sort_values(
        ascending=False
    )
    assert [SCANNABLE[i] for i in result.index] == list(expected.index[:3])
    np.testing.assert_allclose(result.momentum, expected.to_numpy()[:3])
    assert result.rejected == {"below_prerank": 3}
    assert result.scanned == 6


async def test_prerank_rejects_missing_stale_and_cheap_snapshots(market: ReplayMarketData) -> None:
    snaps = await market.get_snapshots(["AAPL", "MSFT"])
    symbols = ["AAPL", "MSFT", "ZZZZ"]
    arrays = snapshot_arrays(snaps, symbols, AS_OF)
    result = prerank(arrays, ScanConfig(min_price=math.nextafter(89.61, math.inf)))  # MSFT closed at 89.61
    assert [symbols[i] for i in result.index] == ["AAPL"]
    assert result.rejected == {"no_snapshot": 1, "price_below_min": 1}
    stale = prerank(snapshot_arrays(snaps, symbols, date(2018, 2, 8)), ScanConfig())
    assert stale.index.size == 0
    assert stale.rejected == {"no_snapshot": 1, "stale_snapshot": 2}


async def test_rvol_boundaries_and_corrupt_values(market: ReplayMarketData, cache: VolumeCache) -> None:
    snap = await real_snapshot(market, SCANNABLE)
    avg = cache.lookup(SCANNABLE).avg_volume
    rvol = snap.volume / avg
    xom = SCANNABLE.index("XOM")  # 1.516x its average on 2018-02-07
    at = float(rvol[xom])
    keep, values, _ = rvol_filter(snap.volume, avg, ScanConfig(min_rvol=at))
    assert keep[xom]
    np.testing.assert_allclose(values, rvol)
    keep, _, rejected = rvol_filter(snap.volume, avg, ScanConfig(min_rvol=math.nextafter(at, math.inf)))
    assert not keep[xom]
    assert rejected["rvol_below_min"] == int(np.count_nonzero(rvol <= at))
    # A corrupt cache entry (average a thousandth of the real one) reads as RVOL > 1000: rejected, not ranked.
    corrupt = avg.copy()
    corrupt[xom] = snap.volume[xom] / 1000.5
    keep, _, rejected = rvol_filter(snap.volume, corrupt, ScanConfig(min_rvol=0.0))
    assert not keep[xom]
    assert rejected == {"rvol_corrupt": 1}
    exact = avg.copy()
    exact[xom] = snap.volume[xom] / 1000.0
    assert rvol_filter(snap.volume, exact, ScanConfig(min_rvol=0.0))[0][xom]
    missing = avg.copy()
    missing[xom] = np.nan
    assert rvol_filter(snap.volume, missing, ScanConfig(min_rvol=0.0))[2] == {"no_cached_average": 1}


async def test_rank_uses_the_daemons_zscore(
    market: ReplayMarketData, calendar: NyseCalendar, small_history: BarFrame
) -> None:
    frame = await fetch_daily_window(market, calendar, SCANNABLE, last_sessions(calendar, AS_OF, 20))
    ones: FloatArray = np.full(len(SCANNABLE), 2.0)
    keep, z, score, _ = rank(frame, ones, np.full(len(SCANNABLE), 0.5), 20)
    np.testing.assert_allclose(z, zscore(frame, 20))
    closes = pd.DataFrame(small_history.close, columns=small_history.symbols)[list(SCANNABLE)]
    expected = ((closes - closes.rolling(20).mean()) / closes.rolling(20).std()).iloc[-1].to_numpy()
    np.testing.assert_allclose(z, expected, rtol=1e-9)
    assert keep.all()
    assert np.isfinite(score).all()


def test_ranked_by_the_strategys_entry_score_an_enterable_symbol_always_comes_first(
    small_history: BarFrame,
) -> None:
    zscore_strategy = select_strategy(Settings())
    closes = pd.DataFrame(small_history.close, columns=small_history.symbols)[list(SCANNABLE)]
    z_all = (closes - closes.rolling(20).mean()) / closes.rolling(20).std()
    entered = 0
    for row in range(40, len(small_history.timestamps), 11):
        frame = frame_at(small_history, row, rows=20)
        columns = [small_history.symbols.index(s) for s in SCANNABLE]
        frame = BarFrame(SCANNABLE, frame.timestamps, *(getattr(frame, f)[:, columns] for f in FIELDS))
        ones = np.ones(len(SCANNABLE))
        keep, z, score, _ = rank(frame, ones, ones, 20, zscore_strategy)
        np.testing.assert_allclose(score[keep], -2.0 - z[keep])  # ZSCORE_ENTRY − z
        can_enter = z <= -2.0
        order = top_k(np.where(keep, score, np.nan), len(SCANNABLE))
        flags = can_enter[order].tolist()
        assert flags == sorted(flags, reverse=True), row  # never an enterable one below one that is not
        np.testing.assert_allclose(z[keep], z_all.iloc[row].to_numpy()[keep], rtol=1e-9)
        entered += int(can_enter.sum())
    assert entered > 0


async def test_with_a_strategy_the_scan_ranks_by_its_score_and_drops_no_symbol_for_low_rvol(
    market: ReplayMarketData, cache: VolumeCache, calendar: NyseCalendar
) -> None:
    chosen = select_strategy(Settings())
    scanner = DailyScanner(market, cache, calendar, ScanConfig(), strategy=chosen)
    result = await scanner.run(_Source(small_universe()), as_of=AS_OF, now=calendar.scan_time(AS_OF))
    # Without a strategy only DHR, XOM and FTV pass MIN_RVOL (1.5) that day; the z-score's entry needs no volume.
    assert {c.symbol for c in result.candidates} == {"AAPL", "MSFT", "DHR", "XOM", "JPM", "FTV"}
    assert "rvol_below_min" not in result.stage("rvol").rejected
    assert [c.zscore for c in result.candidates] == sorted(c.zscore for c in result.candidates)
    for candidate in result.candidates:
        assert candidate.score == pytest.approx(-2.0 - candidate.zscore, abs=1e-3)
        assert "zscore_mean_reversion's entry score" in candidate.reason
    assert validate_candidates(result.payload()) == []


async def test_the_breakout_scan_reads_its_own_lookback_of_bars(
    market: ReplayMarketData, cache: VolumeCache, calendar: NyseCalendar
) -> None:
    chosen = select_strategy(Settings(strategy_name="rvol_breakout"))
    scanner = DailyScanner(market, cache, calendar, ScanConfig(), strategy=chosen)
    result = await scanner.run(_Source(small_universe()), as_of=AS_OF, now=calendar.scan_time(AS_OF))
    symbols = tuple(c.symbol for c in result.candidates)
    frame = await fetch_daily_window(market, calendar, symbols, last_sessions(calendar, AS_OF, 21))
    expected = chosen.strategy.entry_score(frame)  # type: ignore[attr-defined]
    np.testing.assert_allclose([c.score for c in result.candidates], expected, atol=1e-3)
    assert [c.score for c in result.candidates] == sorted((c.score for c in result.candidates), reverse=True)


# ---- the whole pipeline ---------------------------------------------------------------------------------------------


class _ShortInterest:
    """A data source that knows short interest for some symbols only."""

    def __init__(self, known: Mapping[str, float]) -> None:
        self.known = known

    async def factors(self, symbols: Sequence[str], as_of: date) -> Mapping[str, FloatArray]:
        return {"short_interest": np.array([self.known.get(s, np.nan) for s in symbols])}


async def test_full_scan_counts_every_symbol_and_explains_every_pick(
    market: ReplayMarketData, cache: VolumeCache, calendar: NyseCalendar
) -> None:
    scanner = DailyScanner(market, cache, calendar, ScanConfig())
    result = await scanner.run(_Source(small_universe()), as_of=AS_OF, now=calendar.scan_time(AS_OF))
    names = [s.name for s in result.stages]
    assert names == ["universe", "prescreen", "snapshot", "prerank", "rvol", "bars", "rank", "explosion", "output"]
    for name in ("prescreen", "prerank", "rvol", "rank"):
        stage = result.stage(name)
        assert stage.n_in - stage.n_out == sum(stage.rejected.values()), name
    # On 2018-02-07 DHR (1.80x), XOM (1.52x) and FTV (1.68x) traded at >= 1.5x their 20-day volume; "O" is odd.
    assert {c.symbol for c in result.candidates} == {"DHR", "XOM", "FTV"}
    scores = [c.score for c in result.candidates]
    assert scores == sorted(scores, reverse=True)
    for candidate in result.candidates:
        assert candidate.rvol >= 1.5
        assert f"z {candidate.zscore:+.2f}" in candidate.reason
        assert candidate.explosion_factors == ("momentum", "rvol", "change_pct", "price_level")
        assert candidate.explosion_probability is not None
        assert 0 <= candidate.explosion_probability <= 95
    payload = result.payload()
    assert validate_candidates(payload) == []
    assert payload["symbols"][-2:] == ["SPY", "QQQ"]
    assert payload["stats"]["cache"]["hit_rate"] == 1.0
    assert payload["stats"]["rejected"]["odd_symbol"] == 1


async def test_baseline_is_always_present_even_with_no_candidates(
    market: ReplayMarketData, cache: VolumeCache, calendar: NyseCalendar
) -> None:
    scanner = DailyScanner(market, cache, calendar, ScanConfig(min_rvol=100.0))
    result = await scanner.run(_Source(small_universe()), as_of=AS_OF, now=calendar.scan_time(AS_OF))
    assert result.candidates == ()
    assert result.symbols == ("SPY", "QQQ")
    assert validate_candidates(result.payload()) == []


async def test_baseline_symbol_that_is_also_a_candidate_is_listed_once(
    market: ReplayMarketData, cache: VolumeCache, calendar: NyseCalendar
) -> None:
    scanner = DailyScanner(market, cache, calendar, ScanConfig(baseline=("XOM", "SPY")))
    result = await scanner.run(_Source(small_universe()), as_of=AS_OF, now=calendar.scan_time(AS_OF))
    assert "XOM" in {c.symbol for c in result.candidates}
    assert result.symbols.count("XOM") == 1
    assert result.symbols[-1] == "SPY"


async def test_optional_factors_are_used_only_where_the_source_has_data(
    market: ReplayMarketData, cache: VolumeCache, calendar: NyseCalendar
) -> None:
    plain = DailyScanner(market, cache, calendar, ScanConfig())
    sourced = DailyScanner(market, cache, calendar, ScanConfig(), factor_source=_ShortInterest({"XOM": 0.02}))
    now = calendar.scan_time(AS_OF)
    without = {c.symbol: c for c in (await plain.run(_Source(small_universe()), as_of=AS_OF, now=now)).candidates}
    result = await sourced.run(_Source(small_universe()), as_of=AS_OF, now=now)
    with_source = {c.symbol: c for c in result.candidates}
    assert "short_interest" in with_source["XOM"].explosion_factors
    assert with_source["XOM"].explosion_probability != without["XOM"].explosion_probability
    assert "short_interest" not in with_source["DHR"].explosion_factors
    assert with_source["DHR"].explosion_probability == without["DHR"].explosion_probability
    assert result.stats["explosion_factors_available"][-1] == "short_interest"
    # The oversold score does not depend on the optional factors.
    assert with_source["DHR"].score == without["DHR"].score
