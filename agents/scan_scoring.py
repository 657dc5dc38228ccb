"""The scanner's arithmetic: pure numpy over arrays aligned by symbol, shared by the daily scan and intraday scoring.

Every function takes one element per symbol and works on all symbols at once (no Python loop per symbol). NaN means
"no data" and stays NaN: a missing input never turns into a zero score or a default value.

The formulas, in one place so that the `reason` of a candidate can cite them:

- change %        = (price / previous close − 1) × 100
- momentum        = |change %| × 2.0 + ln(volume) × 1.0                 (the pre-rank score)
- momentum pct    = share of the scanned market with a momentum ≤ this one (0..1)
- RVOL            = today's volume / 20-day average volume
- oversold score  = 100 × (0.5 × oversold + 0.3 × activity + 0.2 × momentum pct), where
                    oversold = clip(−z / 4, 0, 1)   (z ≤ −4 → 1, z ≥ 0 → 0; z is the daemon's 20-day entry z-score)
                    activity = clip(log10(RVOL), 0, 1)   (1× normal volume → 0, 10× → 1)
- explosion %     = 95 × Σ wᵢ·sᵢ / Σ wᵢ over the factors i that have data for the symbol (sᵢ in 0..1), so it is
                    never above 95 and a factor without data neither adds nor subtracts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.types import FloatArray

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]

MOMENTUM_CHANGE_WEIGHT = 2.0
MOMENTUM_VOLUME_WEIGHT = 1.0

# Oversold ranking: what the daemon trades is mean reversion, so the z-score carries half the weight.
OVERSOLD_WEIGHT = 0.5
ACTIVITY_WEIGHT = 0.3
MOMENTUM_WEIGHT = 0.2
OVERSOLD_FULL_Z = 4.0

EXPLOSION_CAP = 95.0
# Weights before renormalisation. The first four come from price and volume, which every scan has; the others only
# count when a data source provides them (see `FACTOR_TRANSFORMS`).
EXPLOSION_WEIGHTS: Mapping[str, float] = {
    "momentum": 0.20,
    "rvol": 0.25,
    "change_pct": 0.15,
    "price_level": 0.10,
    "short_interest": 0.12,
    "borrow_rate": 0.06,
    "float": 0.07,
    "catalyst": 0.05,
}
MARKET_FACTORS = ("momentum", "rvol", "change_pct", "price_level")
OPTIONAL_FACTORS = ("short_interest", "borrow_rate", "float", "catalyst")

# Price level: cheap stocks move more in percentage terms. $5 (the pre-screen floor) → 1, $500 → 0, log scale.
_PRICE_HIGH, _PRICE_LOW = 500.0, 5.0
_FULL_MOVE_PCT = 10.0  # a 10 % day scores 1 on the change factor


def first_failure(n: int, checks: Sequence[tuple[str, BoolArray]]) -> tuple[BoolArray, dict[str, int]]:
    """Apply `(reason, failed)` checks in order; each rejected symbol is counted once, under its first reason.

    Returns the mask of symbols that passed every check and the count per reason (reasons with no hit left out).
    The loop is over the handful of reasons, never over symbols.
    """
    remaining = np.ones(n, dtype=bool)
    counts: dict[str, int] = {}
    for reason, failed in checks:
        hit = int(np.count_nonzero(remaining & failed))
        if hit:
            counts[reason] = counts.get(reason, 0) + hit
        remaining &= ~failed
    return remaining, counts


def change_pct(price: FloatArray, prev_close: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        result: FloatArray = (price / prev_close - 1.0) * 100.0
    return result


def momentum(change: FloatArray, volume: FloatArray) -> FloatArray:
    """The pre-rank score: |change %| × 2.0 + ln(volume) × 1.0 (NaN where volume is not positive)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        log_volume = np.where(volume > 0, np.log(volume), np.nan)
    result: FloatArray = np.abs(change) * MOMENTUM_CHANGE_WEIGHT + log_volume * MOMENTUM_VOLUME_WEIGHT
    return result


def top_k(values: FloatArray, k: int) -> IntArray:
    """Indices of the `k` largest finite values, largest first; equal values keep their index order."""
    finite = np.flatnonzero(np.isfinite(values))
    k = min(k, finite.size)
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    if k < finite.size:
        part = np.argpartition(-values[finite], k - 1)[:k]
        finite = finite[part]
    order = np.lexsort((finite, -values[finite]))
    result: IntArray = finite[order]
    return result


def percentile_rank(values: FloatArray, population: FloatArray) -> FloatArray:
    """Share of the finite `population` that is ≤ each value (0..1); NaN where the value is NaN."""
    sorted_population = np.sort(population[np.isfinite(population)])
    if sorted_population.size == 0:
        return np.full(values.shape, np.nan)
    ranks = np.searchsorted(sorted_population, values, side="right") / sorted_population.size
    result: FloatArray = np.where(np.isfinite(values), ranks, np.nan)
    return result


def relative_volume(volume: FloatArray, avg_volume: FloatArray) -> FloatArray:
    """Today's volume over the 20-day average; NaN where the average is missing or not positive."""
    with np.errstate(invalid="ignore", divide="ignore"):
        result: FloatArray = np.where(avg_volume > 0, volume / avg_volume, np.nan)
    return result


def activity(rvol: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        result: FloatArray = np.clip(np.log10(rvol), 0.0, 1.0)
    return result


def oversold_score(zscore: FloatArray, rvol: FloatArray, momentum_pct: FloatArray) -> FloatArray:
    """0..100; NaN when any input is missing (a symbol is not ranked on part of its data)."""
    oversold = np.clip(-zscore / OVERSOLD_FULL_Z, 0.0, 1.0)
    result: FloatArray = 100.0 * (
        OVERSOLD_WEIGHT * oversold + ACTIVITY_WEIGHT * activity(rvol) + MOMENTUM_WEIGHT * momentum_pct
    )
    return result


# ---- explosion probability ----------------------------------------------------------------------------------------


def _short_interest(raw: FloatArray) -> FloatArray:
    return np.clip(raw / 0.30, 0.0, 1.0)  # share of float sold short; 30 % or more scores 1


def _borrow_rate(raw: FloatArray) -> FloatArray:
    return np.clip(raw / 50.0, 0.0, 1.0)  # annual borrow fee in %; 50 %/yr or more scores 1


def _float(raw: FloatArray) -> FloatArray:
    # Shares in the float: 10M or fewer scores 1, 1B or more scores 0, log scale in between.
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip((9.0 - np.log10(raw)) / 2.0, 0.0, 1.0)


def _catalyst(raw: FloatArray) -> FloatArray:
    return np.where(np.isnan(raw), np.nan, (raw > 0).astype(np.float64))  # 1 = a known catalyst, 0 = known none


FACTOR_TRANSFORMS = {
    "short_interest": _short_interest,
    "borrow_rate": _borrow_rate,
    "float": _float,
    "catalyst": _catalyst,
}


def price_level(price: FloatArray) -> FloatArray:
    span = math.log10(_PRICE_HIGH) - math.log10(_PRICE_LOW)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip((math.log10(_PRICE_HIGH) - np.log10(price)) / span, 0.0, 1.0)


def market_factors(
    momentum_pct: FloatArray, rvol: FloatArray, change: FloatArray, price: FloatArray
) -> dict[str, FloatArray]:
    """Sub-scores (0..1) of the factors every scan has data for."""
    return {
        "momentum": momentum_pct,
        "rvol": activity(rvol),
        "change_pct": np.clip(np.abs(change) / _FULL_MOVE_PCT, 0.0, 1.0),
        "price_level": price_level(price),
    }


def optional_factors(raw: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    """Sub-scores of data-source factors (short interest, borrow rate, float, catalyst); NaN stays NaN."""
    unknown = set(raw) - set(FACTOR_TRANSFORMS)
    if unknown:
        raise ValueError(f"unknown explosion factors {sorted(unknown)}; known: {sorted(FACTOR_TRANSFORMS)}")
    return {name: FACTOR_TRANSFORMS[name](np.asarray(values, dtype=np.float64)) for name, values in raw.items()}


@dataclass(frozen=True, slots=True)
class Explosion:
    """Probability per symbol (NaN when no factor has data) and which factors it used: `used[f, n]`."""

    probability: FloatArray
    names: tuple[str, ...]
    used: BoolArray

    def factors_of(self, column: int) -> list[str]:
        return [name for name, used in zip(self.names, self.used[:, column], strict=True) if used]


def explosion_probability(factors: Mapping[str, FloatArray]) -> Explosion:
    """95 × the weighted mean of the sub-scores that have data, weights renormalised per symbol."""
    names = tuple(name for name in EXPLOSION_WEIGHTS if name in factors)
    unknown = set(factors) - set(EXPLOSION_WEIGHTS)
    if unknown:
        raise ValueError(f"unknown explosion factors {sorted(unknown)}")
    if not names:
        raise ValueError("explosion probability needs at least one factor")
    scores = np.stack([np.asarray(factors[name], dtype=np.float64) for name in names])
    weights = np.array([EXPLOSION_WEIGHTS[name] for name in names])[:, None]
    used = np.isfinite(scores)
    weight_used = (weights * used).sum(axis=0)
    weighted = np.where(used, scores * weights, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        probability = np.where(weight_used > 0, EXPLOSION_CAP * weighted / weight_used, np.nan)
    return Explosion(probability=probability, names=names, used=used)
