"""Portfolio risk of the positions held: volatility from the covariance of their daily returns, and how much the
mix diversifies (the diversification ratio).

Definitions (also in the README, "Portfolio risk metrics"):

- weights wᵢ = position value / equity, so cash is a zero-risk remainder and the volatility is the account's;
- Σ = the sample covariance (ddof=1) of the held symbols' daily close-to-close returns over the last
  `LOOKBACK_SESSIONS` sessions up to the as-of session, on the sessions where every held symbol has a return;
- portfolio volatility σₚ = sqrt(wᵀ Σ w) × √252, in percent;
- diversification ratio DR = Σ wᵢσᵢ / σₚ (Choueifaty & Coignard): the weighted average of the symbols' own
  volatilities over the portfolio's. 1 means no diversification (one position, or perfectly correlated ones); it grows
  as correlations fall (N independent equal-risk positions give √N). Chosen over 1 − HHI and the effective number of
  positions because `status` already shows those, and they see only the weights, never the correlations.

A held symbol without enough history is never given a made-up return: the returns are taken on the sessions where every
held symbol has one, and with fewer than `MIN_RETURNS` such sessions both figures are undefined (None), the `note`
naming the symbols short of data. Pure numpy (the record, `PortfolioRisk`, is in `analytics/model.py`: numpy-free);
`portfolio_risk_at` reads the closes from a `BarFrame`, so the report,
`tradingd status` and the dashboard compute it the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import numpy as np

from analytics.model import LOOKBACK_SESSIONS, MIN_RETURNS, SESSIONS_PER_YEAR, PortfolioRisk
from core.timeconv import ny_dates
from core.types import BarFrame, FloatArray


def portfolio_risk(
    weights: FloatArray, closes: FloatArray, symbols: tuple[str, ...], as_of: date | None = None
) -> PortfolioRisk:
    """`weights`: per held symbol, its value / equity; `closes`: (sessions, symbols) daily closes oldest first, NaN
    where a symbol has no close, the last row the as-of session."""
    n = len(symbols)
    if n == 0:
        return PortfolioRisk(None, None, 0, 0, as_of, "no positions")
    returns = closes[1:] / closes[:-1] - 1.0
    common = np.all(np.isfinite(returns), axis=1)
    used = int(common.sum())
    if used < MIN_RETURNS:
        counts = np.isfinite(returns).sum(axis=0)
        short = [s for s, c in zip(symbols, counts.tolist(), strict=True) if c < MIN_RETURNS] or list(symbols)
        note = (
            f"{used} sessions of returns common to every held symbol, fewer than {MIN_RETURNS} "
            f"(short of history: {', '.join(short)})"
        )
        return PortfolioRisk(None, None, n, used, as_of, note)
    kept = returns[common]
    covariance = np.atleast_2d(np.cov(kept, rowvar=False, ddof=1)) * SESSIONS_PER_YEAR
    variance = float(weights @ covariance @ weights)
    volatility = float(np.sqrt(max(variance, 0.0)))
    own = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    weighted = float(np.abs(weights) @ own)
    if volatility <= 0:
        return PortfolioRisk(0.0, None, n, used, as_of, "no variance over the lookback")
    return PortfolioRisk(volatility * 100.0, weighted / volatility, n, used, as_of, None)


def portfolio_risk_at(values: Mapping[str, float], equity: float, bars: BarFrame, as_of: date) -> PortfolioRisk:
    """The risk of positions worth `values` (dollars by symbol) in an account worth `equity` at the close of `as_of`,
    from the closes in `bars` of the `LOOKBACK_SESSIONS` sessions up to it. A held symbol the bars lack has no
    history: the figures are then undefined, the note says which."""
    held = tuple(sorted(symbol for symbol, value in values.items() if value != 0))
    if not held:
        return PortfolioRisk(None, None, 0, 0, as_of, "no positions")
    if equity <= 0:
        return PortfolioRisk(None, None, len(held), 0, as_of, "equity is not positive")
    missing = [s for s in held if s not in bars.symbols]
    if missing:
        note = f"no daily closes for {', '.join(missing)}"
        return PortfolioRisk(None, None, len(held), 0, as_of, note)
    days = ny_dates(bars.timestamps_ns).astype("datetime64[D]")
    end = int(np.searchsorted(days, np.datetime64(as_of, "D"), side="right"))
    start = max(end - (LOOKBACK_SESSIONS + 1), 0)
    columns = [bars.symbols.index(s) for s in held]
    closes = bars.close[start:end][:, columns]
    weights = np.array([values[s] / equity for s in held])
    return portfolio_risk(weights, closes, held, as_of)
