"""Round-trip statistics: `TradeStats` of a set of trips, `GroupStats` per symbol and per tier, and the
`PerformanceTracker` that answers them as of a date (the dashboard's top performers and the ML features reuse it).

A win is a trip with P&L > 0, a loss one with P&L < 0 (a trip at exactly 0 is neither, but counts as a trade). Profit
factor is gross profit / gross loss: None without a losing trip (undefined, never infinity), and None without trades.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from analytics.model import GroupStats, RoundTrip, SymbolStats, TradeStats
from core.timeconv import ny_instant

_ZERO = Decimal(0)


def _profit_factor(gross_profit: Decimal, gross_loss: Decimal) -> float | None:
    return float(gross_profit / gross_loss) if gross_loss > 0 else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def trade_stats(trips: Sequence[RoundTrip]) -> TradeStats:
    """Statistics of `trips` (in exit order: the losing streak is counted along it)."""
    wins = [t for t in trips if t.pnl > 0]
    losses = [t for t in trips if t.pnl < 0]
    streak = longest = 0
    for trip in trips:
        streak = streak + 1 if trip.pnl < 0 else 0
        longest = max(longest, streak)
    gross_profit = sum((t.pnl for t in wins), _ZERO)
    gross_loss = -sum((t.pnl for t in losses), _ZERO)
    return TradeStats(
        trades=len(trips),
        wins=len(wins),
        losses=len(losses),
        win_rate_pct=len(wins) / len(trips) * 100.0 if trips else None,
        profit_factor=_profit_factor(gross_profit, gross_loss),
        expectancy=_mean([float(t.pnl) for t in trips]),
        avg_win=_mean([float(t.pnl) for t in wins]),
        avg_loss=_mean([float(t.pnl) for t in losses]),
        avg_win_pct=_mean([t.pnl_pct for t in wins]),
        avg_loss_pct=_mean([t.pnl_pct for t in losses]),
        avg_hold_days=_mean([t.days_held for t in trips]),
        longest_losing_streak=longest,
    )


def group_stats(trips: Iterable[RoundTrip]) -> GroupStats:
    trades = wins = losses = 0
    gross_profit = gross_loss = _ZERO
    for trip in trips:
        trades += 1
        if trip.pnl > 0:
            wins += 1
            gross_profit += trip.pnl
        elif trip.pnl < 0:
            losses += 1
            gross_loss -= trip.pnl
    return GroupStats(
        trades=trades,
        wins=wins,
        losses=losses,
        win_rate_pct=wins / trades * 100.0 if trades else None,
        profit_factor=_profit_factor(gross_profit, gross_loss),
        pnl=gross_profit - gross_loss,
    )


def by_symbol(trips: Sequence[RoundTrip]) -> tuple[SymbolStats, ...]:
    """Per symbol, most trades first (then symbol); the tier is that of the symbol's latest entry."""
    grouped: dict[str, list[RoundTrip]] = {}
    for trip in trips:
        grouped.setdefault(trip.symbol, []).append(trip)
    rows = [
        SymbolStats(symbol=symbol, tier=max(group, key=lambda t: t.entry_time).tier, stats=group_stats(group))
        for symbol, group in grouped.items()
    ]
    rows.sort(key=lambda row: (-row.stats.trades, row.symbol))
    return tuple(rows)


def by_tier(trips: Sequence[RoundTrip]) -> dict[str, GroupStats]:
    """Per tier name (trips whose entry order has no tier under "none"), in tier order."""
    grouped: dict[str, list[RoundTrip]] = {}
    for trip in trips:
        grouped.setdefault("none" if trip.tier is None else trip.tier.value, []).append(trip)
    return {tier: group_stats(grouped[tier]) for tier in sorted(grouped)}


@dataclass(frozen=True, slots=True)
class PerformanceTracker:
    """Per-symbol round-trip statistics from trips closed strictly before `as_of` (a date: its midnight New York is
    the cut, so a trip closed on the day itself is not yet known). `as_of=None`: every trip.

    `top(n)`: the symbols with the highest realised P&L, ties by more trades then symbol; only symbols with at least
    `min_trades` trips. `recent_win_ratio(symbol, last)`: wins / trips over the symbol's last `last` trips (None
    without any)."""

    trips: tuple[RoundTrip, ...]  # by exit time
    as_of: date | None = None

    @classmethod
    def from_trips(cls, trips: Iterable[RoundTrip], as_of: date | None = None) -> PerformanceTracker:
        ordered = sorted(trips, key=lambda t: t.exit_time)
        if as_of is not None:
            cut = ny_instant(as_of)
            ordered = ordered[: bisect.bisect_left([t.exit_time for t in ordered], cut)]
        return cls(trips=tuple(ordered), as_of=as_of)

    def at(self, as_of: date) -> PerformanceTracker:
        """The same trips as known on an earlier (or equal) date."""
        return PerformanceTracker.from_trips(self.trips, as_of)

    def symbol_trips(self, symbol: str) -> list[RoundTrip]:
        return [t for t in self.trips if t.symbol == symbol]

    def stats(self, symbol: str) -> GroupStats:
        return group_stats(self.symbol_trips(symbol))

    def top(self, n: int, *, min_trades: int = 1) -> list[SymbolStats]:
        rows = [row for row in by_symbol(self.trips) if row.stats.trades >= min_trades]
        rows.sort(key=lambda row: (-row.stats.pnl, -row.stats.trades, row.symbol))
        return rows[:n]

    def recent_win_ratio(self, symbol: str, last: int) -> float | None:
        recent = self.symbol_trips(symbol)[-last:] if last > 0 else []
        return sum(1 for t in recent if t.pnl > 0) / len(recent) if recent else None
