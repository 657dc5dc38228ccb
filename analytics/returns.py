"""`ReturnStats` from the end-of-day equity series, and alpha/beta against a benchmark's.

The series passed in starts with the equity *before* the first session (its start-of-day equity) and then has one
end-of-day value per session, so the first session's return counts. Conventions (the model's): risk-free rate 0, 252
sessions a year, sample standard deviation. empyrical-reloaded computes what it has, and its definitions are the
model's: annual volatility std(ddof=1)·√252; Sharpe mean/std(ddof=1)·√252; Sortino mean·252 over the downside risk
sqrt(mean(min(r, 0)²))·√252; CAGR (final/start)^(252/n) − 1; Calmar CAGR/|max drawdown|; alpha the mean daily
residual compounded over 252 sessions. Drawdown duration, best/worst day, exposure and turnover are computed here.
Whatever is undefined (too few sessions, no variance, no losing day, no drawdown) is None, never inf or NaN.
"""

from __future__ import annotations

import math
import warnings

import empyrical  # type: ignore[import-untyped]  # no stubs; every result goes through `finite`
import numpy as np

from analytics.model import ReturnStats
from core.types import FloatArray

SESSIONS_PER_YEAR = 252


def finite(value: float | np.floating | None) -> float | None:
    """`value` as a float, or None when it is missing, NaN or infinite (an undefined statistic)."""
    if value is None:
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def _pct(value: float | None) -> float | None:
    return None if value is None else value * 100.0


def daily_returns(equity: FloatArray) -> FloatArray:
    """Simple returns of consecutive values (one fewer than `equity`)."""
    return equity[1:] / equity[:-1] - 1.0


def drawdown_pct(equity: FloatArray) -> FloatArray:
    """The fall from the running peak at each point, in percent (positive; 0 at a new high)."""
    peaks = np.maximum.accumulate(equity)
    return (1.0 - equity / peaks) * 100.0


def max_drawdown_days(equity: FloatArray) -> int | None:
    """Sessions from the peak before the deepest drawdown to its recovery (back at or above that peak), or to the end
    of the series when it never recovered; None without a drawdown."""
    if equity.size < 2:
        return None
    peaks = np.maximum.accumulate(equity)
    falls = 1.0 - equity / peaks
    trough = int(np.argmax(falls))
    if falls[trough] <= 0:
        return None
    peak = int(np.flatnonzero(equity[: trough + 1] == peaks[trough])[-1])
    recovered = np.flatnonzero(equity[trough:] >= peaks[trough])
    end = trough + int(recovered[0]) if recovered.size else equity.size - 1
    return end - peak


def return_stats(
    equity: FloatArray,
    *,
    invested_pct: FloatArray | None = None,
    traded_notional: float = 0.0,
) -> ReturnStats:
    """`equity`: start value then one end-of-day value per session; `invested_pct`: per session, the positions'
    market value as a percentage of equity (None: unknown); `traded_notional`: dollars bought plus sold."""
    if equity.size < 2 or not np.all(equity > 0):
        return _empty_stats(invested_pct)
    returns = daily_returns(equity)
    sessions = returns.size
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        volatility = finite(empyrical.annual_volatility(returns)) if sessions > 1 else None
        sharpe = finite(empyrical.sharpe_ratio(returns)) if volatility else None
        has_losing_day = bool(np.any(returns < 0))
        sortino = finite(empyrical.sortino_ratio(returns)) if has_losing_day else None
        cagr = finite(empyrical.annual_return(returns))
        max_drawdown = finite(abs(empyrical.max_drawdown(returns)))  # abs: no drawdown is 0.0, never -0.0
        calmar = finite(empyrical.calmar_ratio(returns)) if max_drawdown else None
    total = finite(equity[-1] / equity[0] - 1.0)
    mean_equity = float(np.mean(equity[1:]))
    years = sessions / SESSIONS_PER_YEAR
    return ReturnStats(
        total_return_pct=_pct(total),
        cagr_pct=_pct(cagr),
        volatility_pct=_pct(volatility),
        sharpe=sharpe,
        sortino=sortino,
        calmar=calmar,
        max_drawdown_pct=_pct(max_drawdown),
        max_drawdown_days=max_drawdown_days(equity),
        best_day_pct=_pct(finite(np.max(returns))),
        worst_day_pct=_pct(finite(np.min(returns))),
        **_exposure(invested_pct),
        turnover=finite(traded_notional / mean_equity / years),
    )


def _exposure(invested_pct: FloatArray | None) -> dict[str, float | None]:
    if invested_pct is None or invested_pct.size == 0:
        return {"exposure_time_pct": None, "exposure_avg_pct": None}
    return {
        "exposure_time_pct": float(np.mean(invested_pct > 0) * 100.0),
        "exposure_avg_pct": float(np.mean(invested_pct)),
    }


def _empty_stats(invested_pct: FloatArray | None) -> ReturnStats:
    return ReturnStats(
        total_return_pct=None,
        cagr_pct=None,
        volatility_pct=None,
        sharpe=None,
        sortino=None,
        calmar=None,
        max_drawdown_pct=None,
        max_drawdown_days=None,
        best_day_pct=None,
        worst_day_pct=None,
        **_exposure(invested_pct),
        turnover=None,
    )


def alpha_beta(returns: FloatArray, benchmark_returns: FloatArray) -> tuple[float | None, float | None]:
    """(alpha annualised in percent, beta) of daily `returns` against the benchmark's, over the sessions where both
    are known; None when the benchmark has no variance or fewer than two sessions are shared."""
    both = np.isfinite(returns) & np.isfinite(benchmark_returns)
    ours, theirs = returns[both], benchmark_returns[both]
    if ours.size < 2 or not np.var(theirs) > 0:
        return None, None
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        alpha, beta = empyrical.alpha_beta(ours, theirs)
    return _pct(finite(alpha)), finite(beta)
