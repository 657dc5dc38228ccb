"""The daily scan: from the whole market to a handful of explained candidates, in named, timed, counted stages.

    universe → prescreen → snapshot → prerank → rvol → bars → rank → explosion → output

I/O happens in few places only: the universe, one volume-cache query, one snapshot call, and one bars call (plus the
optional factor source) for the symbols that survive RVOL; the adapter batches each into requests of a chunk of
symbols. Every stage after the snapshot
is numpy over all remaining symbols at once
(see `agents.scan_scoring` for the formulas). Each stage reports its time, how many symbols came in and went out, and
why the others were dropped; a symbol missing data is dropped and counted, never filled with a default.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import structlog

from agents.scan_scoring import (
    ACTIVITY_WEIGHT,
    MOMENTUM_WEIGHT,
    OVERSOLD_FULL_Z,
    OVERSOLD_WEIGHT,
    BoolArray,
    Explosion,
    IntArray,
    activity,
    change_pct,
    explosion_probability,
    first_failure,
    market_factors,
    momentum,
    optional_factors,
    oversold_score,
    percentile_rank,
    relative_volume,
    top_k,
)
from agents.strategies.base import RanksEntries
from agents.strategies.registry import SelectedStrategy
from agents.strategies.zscore_mean_reversion import zscore
from core.broker.base import MarketData, Snapshot, SnapshotArraySource, SnapshotColumns
from core.clock import NyseCalendar
from core.daily_window import fetch_daily_window, last_sessions, ny_day_bounds
from core.sectors import SECTOR_ALIASES, canonical_sector
from core.timeconv import datetime_to_ns, ny_dates
from core.types import BarFrame, FloatArray
from core.universe import Universe, UniverseSource
from core.volume_cache import CachedVolumes, VolumeLookup, cache_target

log = structlog.get_logger(__name__)

# Two to five capitals, optionally a one-letter share class (BRK.B). Excludes single letters and units, warrants,
# rights, preferreds and test symbols, whose names carry digits, '+', '=', '^', '-' or long suffixes.
DEFAULT_SYMBOL_PATTERN = r"[A-Z]{2,5}(?:\.[A-Z])?"
RVOL_CORRUPT = 1000.0
COMPUTE_STAGES = ("prerank", "rvol", "rank", "explosion", "output")


@dataclass(frozen=True, slots=True)
class ScanConfig:
    min_price: float = 5.0
    min_dollar_volume: float = 1_000_000.0
    min_market_cap: float = 0.0
    sector_min_market_cap: Mapping[str, float] = field(default_factory=dict)
    max_price_to_dollar_volume: float = 0.0  # 0: off (the daemon's default, from Settings, is 0.0001)
    max_prescreen_volatility: float = 0.0  # 0: off (the daemon's default, from Settings, is 0.15)
    symbol_pattern: str = DEFAULT_SYMBOL_PATTERN
    prerank_keep: int = 1000
    min_rvol: float = 1.5
    max_rvol: float = RVOL_CORRUPT
    top_n: int = 10
    window: int = 20
    baseline: tuple[str, ...] = ("SPY", "QQQ")


class FactorSource(Protocol):
    """Optional data for the explosion probability (short interest, borrow rate, float, catalyst).

    Returns raw values aligned with `symbols`, NaN where unknown; only factors it actually has are keys.
    """

    async def factors(self, symbols: Sequence[str], as_of: date) -> Mapping[str, FloatArray]: ...


# ---- results ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StageStats:
    name: str
    ms: float
    n_in: int
    n_out: int
    rejected: Mapping[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ms": round(self.ms, 3),
            "in": self.n_in,
            "out": self.n_out,
            "rejected": dict(self.rejected),
        }


@dataclass(frozen=True, slots=True)
class Candidate:
    symbol: str
    rank: int
    score: float
    zscore: float
    rvol: float
    price: float
    change_pct: float
    momentum: float
    momentum_pct: float
    explosion_probability: float | None
    explosion_factors: tuple[str, ...]
    sector: str | None
    reason: str
    # From the volume cache the scan screened with (the dashboard's percentiles); None where it had no value.
    volatility: float | None = None  # 20-day realised volatility (sample std of daily returns)
    dollar_volume: float | None = None  # 20-day average dollar volume

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "rank": self.rank,
            "score": round(self.score, 3),
            "zscore": round(self.zscore, 4),
            "rvol": round(self.rvol, 4),
            "price": round(self.price, 4),
            "change_pct": round(self.change_pct, 4),
            "momentum": round(self.momentum, 4),
            "momentum_pct": round(self.momentum_pct, 4),
            "explosion_probability": (
                None if self.explosion_probability is None else round(self.explosion_probability, 2)
            ),
            "explosion_factors": list(self.explosion_factors),
            "sector": self.sector,
            "reason": self.reason,
            "volatility": None if self.volatility is None else round(self.volatility, 6),
            "dollar_volume": None if self.dollar_volume is None else round(self.dollar_volume, 2),
        }


@dataclass(frozen=True, slots=True)
class ScanResult:
    as_of: date
    generated_at: datetime
    candidates: tuple[Candidate, ...]
    baseline: tuple[str, ...]
    stages: tuple[StageStats, ...]
    stats: Mapping[str, Any]

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*(c.symbol for c in self.candidates), *self.baseline]))

    def stage(self, name: str) -> StageStats:
        return next(s for s in self.stages if s.name == name)

    def payload(self) -> dict[str, Any]:
        """The candidates.json document (docs/ARCHITECTURE.md §File formats)."""
        return {
            "schema": 1,
            "generated_at": self.generated_at.astimezone(UTC).isoformat(),
            "as_of": self.as_of.isoformat(),
            "symbols": list(self.symbols),
            "baseline": list(self.baseline),
            "candidates": [c.as_dict() for c in self.candidates],
            "stats": dict(self.stats),
        }


# ---- stages (pure) ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prescreened:
    index: IntArray  # rows of the universe that passed
    rejected: dict[str, int]
    cache: dict[str, Any]
    skipped: dict[str, int]  # filters that could not apply for lack of data: symbols per filter, never guessed


@dataclass(frozen=True, slots=True)
class StaticScreen:
    """What a universe gives before any market data, computed once per universe (and config): the rules' masks, the
    symbols that pass them, and the per-symbol columns the later stages read, as arrays."""

    checks: tuple[tuple[str, BoolArray], ...]
    passed: BoolArray
    rejected: dict[str, int]  # by the first rule each symbol fails (copied by each scan that adds to it)
    skipped: dict[str, int]
    symbols: tuple[str, ...]
    symbol_array: npt.NDArray[np.object_]
    sectors: npt.NDArray[np.object_]

    @property
    def screened(self) -> list[str]:
        return self.symbol_array[self.passed].tolist()  # type: ignore[no-any-return]


def _sector_floors(universe: Universe, config: ScanConfig) -> FloatArray:
    """Each row's sector floor (NaN: none), sector names of any scheme mapped onto the floors' keys (vectorised)."""
    floors = {canonical_sector(name) or name: amount for name, amount in config.sector_min_market_cap.items()}
    sector = universe.frame["sector"].astype("string")
    key = sector.str.split().str.join(" ").str.lower().map(SECTOR_ALIASES).fillna(sector)
    return np.asarray(key.map(floors).to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def _compute_static(universe: Universe, config: ScanConfig) -> StaticScreen:
    frame = universe.frame
    n = len(frame)
    symbols = frame["symbol"].astype("string")
    odd = ~symbols.str.fullmatch(config.symbol_pattern).fillna(False).to_numpy(dtype=bool)
    cap = frame["market_cap"].to_numpy(dtype=np.float64)
    floors = _sector_floors(universe, config)
    has_cap = universe.has_market_cap
    wants_cap = config.min_market_cap > 0 or bool(config.sector_min_market_cap)
    needs_cap = has_cap & ((config.min_market_cap > 0) | np.isfinite(floors))
    with np.errstate(invalid="ignore"):
        checks = (
            ("odd_symbol", odd),
            ("market_cap_unknown", needs_cap & np.isnan(cap)),
            ("market_cap_below_min", has_cap & (cap < config.min_market_cap)),
            ("sector_floor", has_cap & (cap < floors)),
        )
    passed, rejected = first_failure(n, checks)
    symbol_array = frame["symbol"].to_numpy(dtype=object)
    sectors = frame["sector"].to_numpy(dtype=object)
    for array in (passed, symbol_array, sectors, *(mask for _, mask in checks)):
        array.setflags(write=False)  # shared by every scan of this universe
    skipped: dict[str, int] = {}
    if wants_cap and not has_cap:
        skipped["market_cap"] = n  # the source has no market caps: neither MIN_MARKET_CAP nor a floor can apply
    elif config.sector_min_market_cap:
        no_floor = int(np.count_nonzero(~odd & ~np.isfinite(floors)))
        if no_floor:
            skipped["sector_floor"] = no_floor  # no sector, or one no floor is set for
    return StaticScreen(
        checks=checks,
        passed=passed,
        rejected=rejected,
        skipped=skipped,
        symbols=tuple(symbol_array.tolist()),
        symbol_array=symbol_array,
        sectors=sectors,
    )


# One entry: the daemon and a replay scan the same universe object (FileUniverse re-reads only a changed file), so
# the regex and the sector mapping run once per universe, not once per scan. Keyed by identity and the config.
_static_cache: list[tuple[Universe, ScanConfig, StaticScreen]] = []


def static_screening(universe: Universe, config: ScanConfig) -> StaticScreen:
    if _static_cache and _static_cache[0][0] is universe and _static_cache[0][1] == config:
        return _static_cache[0][2]
    screen = _compute_static(universe, config)
    _static_cache[:] = [(universe, config, screen)]
    return screen


def static_screen(universe: Universe, config: ScanConfig) -> list[str]:
    """The symbols worth caching volumes for: those that pass the rules needing no market data."""
    return static_screening(universe, config).screened


def prescreen(universe: Universe, cached: CachedVolumes, expected_cache: date, config: ScanConfig) -> Prescreened:
    """Cheap rules before any market-data call: symbol shape, market cap (+ sector floors), cached liquidity, the
    price-to-dollar-volume ratio and the 20-day volatility."""
    n = len(universe)
    static = static_screening(universe, config)
    reached_cache, rejected = static.passed, dict(static.rejected)
    status = cached.classify(expected_cache)
    price_to_dollar_volume = config.max_price_to_dollar_volume > 0
    volatility = config.max_prescreen_volatility > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        cache_checks: list[tuple[str, BoolArray]] = [
            ("no_cached_average", status["missing"]),
            ("cache_stale", status["stale"]),
            ("cache_ahead", status["ahead"]),
            ("price_below_min", cached.last_close < config.min_price),
            ("dollar_volume_below_min", cached.avg_dollar_volume < config.min_dollar_volume),
        ]
        if price_to_dollar_volume:
            ratio = cached.last_close / cached.avg_dollar_volume
            cache_checks.append(("price_to_dollar_volume", ratio > config.max_price_to_dollar_volume))
        if volatility:
            # NaN (no 21st close) never fails: the filter is skipped for that symbol and counted below.
            cache_checks.append(("volatility_above_max", cached.volatility > config.max_prescreen_volatility))
    passed, cache_rejected = first_failure(n, [(reason, mask & reached_cache) for reason, mask in cache_checks])
    passed &= reached_cache
    for reason, count in cache_rejected.items():
        rejected[reason] = rejected.get(reason, 0) + count
    skipped = dict(static.skipped)
    if volatility:
        unknown = int(np.count_nonzero(passed & np.isnan(cached.volatility)))
        if unknown:
            skipped["volatility"] = unknown
    looked_up = int(np.count_nonzero(reached_cache))
    hits = int(np.count_nonzero(status["fresh"] & reached_cache))
    cache = {
        "expected_as_of": expected_cache.isoformat(),
        "looked_up": looked_up,
        "hits": hits,
        "missing": int(np.count_nonzero(status["missing"] & reached_cache)),
        "stale": int(np.count_nonzero(status["stale"] & reached_cache)),
        "ahead": int(np.count_nonzero(status["ahead"] & reached_cache)),
        "hit_rate": round(hits / looked_up, 4) if looked_up else None,
    }
    return Prescreened(index=np.flatnonzero(passed), rejected=rejected, cache=cache, skipped=skipped)


@dataclass(frozen=True, slots=True)
class SnapshotArrays:
    """Snapshots as arrays aligned with `symbols`; `current` marks snapshots of the scanned session."""

    symbols: tuple[str, ...]
    present: BoolArray
    current: BoolArray
    price: FloatArray
    prev_close: FloatArray
    volume: FloatArray


def snapshot_columns_arrays(columns: SnapshotColumns, symbols: Sequence[str], as_of: date) -> SnapshotArrays:
    """An adapter's array snapshots (`SnapshotArraySource`) → the scan's arrays, with no per-symbol Python."""
    lo, hi = ny_day_bounds([as_of])  # "of the scanned session" = stamped within its New York date
    current = columns.present & (columns.ts_ns >= lo[0]) & (columns.ts_ns < hi[0])
    return SnapshotArrays(tuple(symbols), columns.present, current, columns.price, columns.prev_close, columns.volume)


async def fetch_snapshot_arrays(market_data: MarketData, symbols: Sequence[str], as_of: date) -> SnapshotArrays:
    """The snapshot stage: the adapter's array fast path where it has one, else its `Snapshot` objects."""
    if isinstance(market_data, SnapshotArraySource):
        return snapshot_columns_arrays(await market_data.get_snapshot_columns(symbols), symbols, as_of)
    return snapshot_arrays(await market_data.get_snapshots(symbols), symbols, as_of)


def snapshot_arrays(snapshots: Mapping[str, Snapshot], symbols: Sequence[str], as_of: date) -> SnapshotArrays:
    """Vendor objects → arrays, once, at the boundary."""
    found = [snapshots.get(symbol) for symbol in symbols]
    n = len(found)
    nan = float("nan")
    present = np.fromiter((s is not None for s in found), dtype=bool, count=n)
    price = np.fromiter((s.price if s is not None else nan for s in found), dtype=np.float64, count=n)
    prev_close = np.fromiter((s.prev_close if s is not None else nan for s in found), dtype=np.float64, count=n)
    volume = np.fromiter((s.volume if s is not None else nan for s in found), dtype=np.float64, count=n)
    stamps = np.fromiter((datetime_to_ns(s.ts) if s is not None else 0 for s in found), dtype=np.int64, count=n)
    days = ny_dates(stamps)
    current = present & (days == np.datetime64(as_of, "D"))
    return SnapshotArrays(tuple(symbols), present, current, price, prev_close, volume)


@dataclass(frozen=True, slots=True)
class Preranked:
    index: IntArray  # into the snapshot arrays, best momentum first
    change: FloatArray  # for `index`
    momentum: FloatArray
    momentum_pct: FloatArray
    scanned: int  # symbols with a valid snapshot (the population of momentum_pct)
    rejected: dict[str, int]


def prerank(snap: SnapshotArrays, config: ScanConfig) -> Preranked:
    """Momentum = |change %| × 2 + ln(volume); keep the best `prerank_keep`."""
    price, prev, volume = snap.price, snap.prev_close, snap.volume
    with np.errstate(invalid="ignore"):
        checks: list[tuple[str, BoolArray]] = [
            ("no_snapshot", ~snap.present),
            ("stale_snapshot", ~snap.current),
            ("bad_price", ~(price > 0)),
            ("bad_volume", ~(volume >= 0)),
            ("no_volume", volume == 0),
            ("no_prev_close", ~(prev > 0)),
            ("price_below_min", price < config.min_price),
        ]
    valid, rejected = first_failure(len(price), checks)
    change = change_pct(price, prev)
    score = np.where(valid, momentum(change, volume), np.nan)
    keep = top_k(score, config.prerank_keep)
    below = int(np.count_nonzero(valid)) - keep.size
    if below:
        rejected["below_prerank"] = below
    return Preranked(
        index=keep,
        change=change[keep],
        momentum=score[keep],
        momentum_pct=percentile_rank(score[keep], score),
        scanned=int(np.count_nonzero(valid)),
        rejected=rejected,
    )


def rvol_filter(
    volume: FloatArray, avg_volume: FloatArray, config: ScanConfig, *, gate: bool = True
) -> tuple[BoolArray, FloatArray, dict[str, int]]:
    """RVOL = volume / 20-day average; keep RVOL ≤ 1000 (above that the data is corrupt) and, with `gate`, ≥ MIN_RVOL.

    The gate belongs to the generic ranking: a strategy that ranks by its own entry score has its own terms (the
    z-score's entry needs no unusual volume; the breakout has its own RVOL threshold), and a symbol it could enter
    must not be dropped here while others it could not enter are picked.
    """
    rvol = relative_volume(volume, avg_volume)
    with np.errstate(invalid="ignore"):
        checks: list[tuple[str, BoolArray]] = [
            ("no_cached_average", ~np.isfinite(rvol)),
            ("rvol_corrupt", rvol > config.max_rvol),
        ]
        if gate:
            checks.append(("rvol_below_min", rvol < config.min_rvol))
    keep, rejected = first_failure(len(rvol), checks)
    return keep, rvol, rejected


def ranker(strategy: SelectedStrategy | None) -> RanksEntries | None:
    """The strategy whose entry score ranks the scan, if it has one; None: the generic oversold score."""
    if strategy is not None and isinstance(strategy.strategy, RanksEntries):
        return strategy.strategy
    return None


def rank(
    frame: BarFrame,
    rvol: FloatArray,
    momentum_pct: FloatArray,
    window: int,
    strategy: SelectedStrategy | None = None,
) -> tuple[BoolArray, FloatArray, FloatArray, dict[str, int]]:
    """The `window`-day z-score of close, and the ranking score: the selected strategy's own entry score, so a
    symbol it could not enter never outranks one it could; without one, `oversold_score` (z-score, RVOL, momentum)."""
    z = zscore(frame, window)
    entry = ranker(strategy)
    if entry is None:
        score = oversold_score(z, rvol, momentum_pct)
    else:
        score = np.asarray(entry.entry_score(frame), dtype=np.float64)
        if score.shape != z.shape:  # a plug-in's array: the wrong shape would rank the wrong symbols
            raise ValueError(f"entry_score returned shape {score.shape} for {z.shape[0]} symbols")
    keep, rejected = first_failure(len(z), [("no_zscore", ~np.isfinite(z)), ("no_score", ~np.isfinite(score))])
    return keep, z, score, rejected


def explosion(
    momentum_pct: FloatArray,
    rvol: FloatArray,
    change: FloatArray,
    price: FloatArray,
    extra: Mapping[str, FloatArray],
) -> Explosion:
    return explosion_probability({**market_factors(momentum_pct, rvol, change, price), **optional_factors(extra)})


# ---- explanation --------------------------------------------------------------------------------------------------


def score_clause(z: float, rvol: float, momentum_pct: float, score: float, strategy: str | None) -> str:
    """How the score was made: the strategy's entry score, or the generic oversold formula with its parts."""
    if strategy is not None:
        return f"score {score:+.2f} = {strategy}'s entry score (>= 0: it enters on this bar)"
    oversold = min(max(-z / OVERSOLD_FULL_Z, 0.0), 1.0)
    act = float(activity(np.array([rvol]))[0])
    return (
        f"score = {OVERSOLD_WEIGHT}·oversold {oversold:.2f} + {ACTIVITY_WEIGHT}·activity {act:.2f} "
        f"+ {MOMENTUM_WEIGHT}·momentum {momentum_pct:.2f}"
    )


def explain(
    z: float, rvol: float, change: float, momentum_pct: float, scanned: int, factors: Sequence[str], scored: str
) -> str:
    return (
        f"z {z:+.2f} vs its 20-day mean; volume {rvol:.1f}x its 20-day average; {change:+.1f}% on the day; "
        f"momentum ≥ {momentum_pct:.1%} of {scanned} scanned; {scored}; "
        f"explosion factors: {', '.join(factors) or 'none'}"
    )


# ---- the pipeline -------------------------------------------------------------------------------------------------


class Laps:
    """Times consecutive stages: each `lap` closes the stage that started at the previous one."""

    def __init__(self) -> None:
        self.stages: list[StageStats] = []
        self._t = time.perf_counter()

    def lap(self, name: str, n_in: int, n_out: int, rejected: Mapping[str, int] | None = None) -> None:
        now = time.perf_counter()
        self.stages.append(StageStats(name, (now - self._t) * 1000, n_in, n_out, dict(rejected or {})))
        self._t = now


def _take(values: Sequence[str], index: IntArray) -> list[str]:
    return [str(value) for value in np.asarray(values, dtype=object)[index]]


@dataclass(frozen=True, slots=True)
class Shortlist:
    """What survives pre-rank and RVOL: `index` into the snapshot arrays, the rest aligned with it."""

    index: IntArray
    price: FloatArray
    rvol: FloatArray
    change: FloatArray
    momentum: FloatArray
    momentum_pct: FloatArray
    scanned: int


def shortlist(
    snap: SnapshotArrays, avg_volume: FloatArray, config: ScanConfig, laps: Laps, *, rvol_gate: bool = True
) -> Shortlist:
    """Stages 4-5 (pre-rank, RVOL) over every snapshot at once; `avg_volume` is aligned with the snapshot."""
    pre = prerank(snap, config)
    laps.lap("prerank", len(snap.symbols), pre.index.size, pre.rejected)
    keep, rvol, rejected = rvol_filter(snap.volume[pre.index], avg_volume[pre.index], config, gate=rvol_gate)
    index = pre.index[keep]
    laps.lap("rvol", pre.index.size, index.size, rejected)
    return Shortlist(
        index=index,
        price=snap.price[index],
        rvol=rvol[keep],
        change=pre.change[keep],
        momentum=pre.momentum[keep],
        momentum_pct=pre.momentum_pct[keep],
        scanned=pre.scanned,
    )


def rank_shortlist(
    short: Shortlist,
    symbols: Sequence[str],
    frame: BarFrame,
    extra: Mapping[str, FloatArray],
    sectors: Sequence[object],
    config: ScanConfig,
    laps: Laps,
    strategy: SelectedStrategy | None = None,
) -> tuple[tuple[Candidate, ...], Explosion]:
    """Stages 6-8 (rank, explosion, output) given the shortlist's bars; `symbols`/`sectors` align with it."""
    ranked, z, score, rejected = rank(frame, short.rvol, short.momentum_pct, config.window, strategy)
    laps.lap("rank", short.index.size, int(np.count_nonzero(ranked)), rejected)
    boom = explosion(short.momentum_pct, short.rvol, short.change, short.price, extra)
    laps.lap("explosion", short.index.size, int(np.count_nonzero(np.isfinite(boom.probability))))
    best = top_k(np.where(ranked, score, np.nan), config.top_n)
    scored_by = strategy.name if strategy is not None and ranker(strategy) is not None else None
    candidates = _candidates(short, symbols, sectors, z, score, boom, best, scored_by)
    laps.lap("output", int(np.count_nonzero(ranked)), len(candidates))
    return candidates, boom


def _candidates(
    short: Shortlist,
    symbols: Sequence[str],
    sectors: Sequence[object],
    z: FloatArray,
    score: FloatArray,
    boom: Explosion,
    best: IntArray,
    scored_by: str | None,
) -> tuple[Candidate, ...]:
    """The top rows as candidates, best first. Their numbers are gathered once per array (`tolist` gives the same
    Python floats `float()` of each element would), not read element by element for each candidate."""
    rows = best.tolist()
    zs, scores, rvols = z[best].tolist(), score[best].tolist(), short.rvol[best].tolist()
    prices, changes = short.price[best].tolist(), short.change[best].tolist()
    momenta, momentum_pcts = short.momentum[best].tolist(), short.momentum_pct[best].tolist()
    probabilities = boom.probability[best].tolist()
    candidates = []
    for position, i in enumerate(rows):
        factors = boom.factors_of(i)
        probability = probabilities[position]
        sector = sectors[i]
        z_i, rvol, change, momentum_pct = zs[position], rvols[position], changes[position], momentum_pcts[position]
        candidates.append(
            Candidate(
                symbol=symbols[i],
                rank=position + 1,
                score=scores[position],
                zscore=z_i,
                rvol=rvol,
                price=prices[position],
                change_pct=change,
                momentum=momenta[position],
                momentum_pct=momentum_pct,
                explosion_probability=probability if math.isfinite(probability) else None,
                explosion_factors=tuple(factors),
                sector=sector if isinstance(sector, str) else None,
                reason=explain(
                    z_i,
                    rvol,
                    change,
                    momentum_pct,
                    short.scanned,
                    factors,
                    score_clause(z_i, rvol, momentum_pct, scores[position], scored_by),
                ),
            )
        )
    return tuple(candidates)


def with_liquidity(
    candidates: tuple[Candidate, ...], survivors: Sequence[str], rows: IntArray, cached: CachedVolumes
) -> tuple[Candidate, ...]:
    """Each candidate with its 20-day volatility and average dollar volume from the cache rows it was screened with
    (`rows` aligned with `survivors`); NaN (unknown) stays None, never a guess."""
    where = dict(zip(survivors, rows.tolist(), strict=True))
    return tuple(
        replace(
            c,
            volatility=_known(cached.volatility[where[c.symbol]]),
            dollar_volume=_known(cached.avg_dollar_volume[where[c.symbol]]),
        )
        for c in candidates
    )


def _known(value: float) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


class DailyScanner:
    def __init__(
        self,
        market_data: MarketData,
        cache: VolumeLookup,
        calendar: NyseCalendar,
        config: ScanConfig,
        *,
        factor_source: FactorSource | None = None,
        strategy: SelectedStrategy | None = None,
    ) -> None:
        self._md = market_data
        self._cache = cache
        self._calendar = calendar
        self.config = config
        self._factors = factor_source
        self._strategy = strategy

    async def run(self, universe_source: UniverseSource, *, as_of: date, now: datetime) -> ScanResult:
        config = self.config
        calls0 = self._md.api_calls
        t0 = time.perf_counter()
        laps = Laps()

        universe = await universe_source.load()
        laps.lap("universe", len(universe), len(universe))

        static = static_screening(universe, config)
        expected_cache = cache_target(self._calendar, as_of)
        cached = self._cache.lookup(static.symbols)
        screened = prescreen(universe, cached, expected_cache, config)
        laps.lap("prescreen", len(universe), screened.index.size, screened.rejected)

        pool = static.symbol_array[screened.index].tolist()
        snap = await fetch_snapshot_arrays(self._md, pool, as_of)
        laps.lap("snapshot", len(pool), int(np.count_nonzero(snap.present)))

        entry = ranker(self._strategy)
        short = shortlist(snap, cached.avg_volume[screened.index], config, laps, rvol_gate=entry is None)

        survivors = _take(pool, short.index)
        rows = max(config.window, entry.lookback) if entry is not None else config.window
        sessions = last_sessions(self._calendar, as_of, rows)
        frame = await fetch_daily_window(self._md, self._calendar, survivors, sessions)
        extra = dict(await self._factors.factors(survivors, as_of)) if self._factors and survivors else {}
        laps.lap("bars", len(survivors), len(survivors))

        sectors = static.sectors[screened.index][short.index]
        candidates, boom = rank_shortlist(
            short, survivors, frame, extra, sectors.tolist(), config, laps, self._strategy
        )
        candidates = with_liquidity(candidates, survivors, screened.index[short.index], cached)

        stages = tuple(laps.stages)
        rejected: dict[str, int] = {}
        for stage in stages:
            for reason, count in stage.rejected.items():
                rejected[reason] = rejected.get(reason, 0) + count
        stats = {
            "as_of": as_of.isoformat(),
            "universe_source": universe.source,
            "universe": len(universe),
            "candidates": len(candidates),
            "session_complete": now >= self._calendar.session_close(as_of),
            "stages": [s.as_dict() for s in stages],
            "rejected": rejected,
            "skipped_filters": screened.skipped,
            "cache": screened.cache,
            "explosion_factors_available": list(boom.names),
            "api_calls": self._md.api_calls - calls0,
            "compute_ms": round(sum(s.ms for s in stages if s.name in COMPUTE_STAGES), 3),
            "elapsed_ms": round((time.perf_counter() - t0) * 1000, 3),
        }
        log.info(
            "scan_completed",
            as_of=as_of.isoformat(),
            universe=len(universe),
            candidates=len(candidates),
            cache_hit_rate=screened.cache["hit_rate"],
            elapsed_ms=stats["elapsed_ms"],
        )
        return ScanResult(
            as_of=as_of,
            generated_at=now.astimezone(UTC),
            candidates=candidates,
            baseline=config.baseline,
            stages=stages,
            stats=stats,
        )
