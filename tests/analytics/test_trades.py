"""Round-trip statistics, per-group statistics and the PerformanceTracker's as-of view."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from analytics.model import ExitReason, RoundTrip
from analytics.trades import PerformanceTracker, by_symbol, by_tier, group_stats, trade_stats
from core.types import Tier

D = Decimal


def trip(symbol: str, pnl: str, *, day: int, held: float = 2.0, tier: Tier | None = Tier.TIER3) -> RoundTrip:
    exit_time = datetime(2016, 3, 1, 21, 0, tzinfo=UTC) + timedelta(days=day)
    cost = D(1000)
    return RoundTrip(
        symbol=symbol,
        tier=tier,
        entry_time=exit_time - timedelta(days=held),
        exit_time=exit_time,
        qty=D(10),
        entry_price=D(100),
        exit_price=(cost + D(pnl)) / 10,
        pnl=D(pnl),
        pnl_pct=float(D(pnl) / cost * 100),
        days_held=held,
        exit_reason=ExitReason.SIGNAL,
        entry_order_id=f"b{day}",
        exit_order_id=f"s{day}",
    )


TRIPS = [
    trip("AAPL", "50", day=0, held=1.0, tier=Tier.TIER1),
    trip("MSFT", "-20", day=1, held=3.0),
    trip("MSFT", "-10", day=2, held=2.0),
    trip("AAPL", "0", day=3, held=4.0, tier=Tier.TIER2),
    trip("XOM", "-30", day=4, held=5.0),
    trip("AAPL", "40", day=5, held=3.0),
]


def test_trade_statistics_by_hand() -> None:
    stats = trade_stats(TRIPS)
    assert (stats.trades, stats.wins, stats.losses) == (6, 2, 3)  # a trip at exactly 0 is neither
    assert stats.win_rate_pct == pytest.approx(2 / 6 * 100)
    assert stats.profit_factor == pytest.approx(90 / 60)
    assert stats.expectancy == pytest.approx(30 / 6)
    assert stats.avg_win == pytest.approx(45.0)
    assert stats.avg_loss == pytest.approx(-20.0)
    assert stats.avg_win_pct == pytest.approx(4.5)
    assert stats.avg_loss_pct == pytest.approx(-2.0)
    assert stats.avg_hold_days == pytest.approx(18 / 6)
    assert stats.longest_losing_streak == 2  # MSFT, MSFT; the 0 trip breaks the streak before XOM


def test_undefined_ratios_without_trades_or_losses_are_none() -> None:
    empty = trade_stats([])
    assert (empty.trades, empty.win_rate_pct, empty.profit_factor, empty.expectancy) == (0, None, None, None)
    assert empty.avg_hold_days is None
    assert trade_stats([trip("AAPL", "5", day=0)]).profit_factor is None  # no loss: never infinity


def test_per_symbol_and_per_tier() -> None:
    rows = by_symbol(TRIPS)
    assert [(r.symbol, r.stats.trades) for r in rows] == [("AAPL", 3), ("MSFT", 2), ("XOM", 1)]
    assert rows[0].tier is Tier.TIER3  # the latest entry's tier
    assert rows[0].stats.pnl == D(90)
    assert rows[1].stats == group_stats(TRIPS[1:3])
    assert rows[1].stats.profit_factor == 0.0  # losses only: defined, 0
    assert rows[1].stats.win_rate_pct == 0.0
    tiers = by_tier(TRIPS)
    assert list(tiers) == ["TIER1", "TIER2", "TIER3"]
    assert (tiers["TIER3"].trades, tiers["TIER3"].pnl, tiers["TIER3"].profit_factor) == (4, D(-20), 40 / 60)


def test_performance_tracker_uses_only_trips_closed_before_its_date() -> None:
    tracker = PerformanceTracker.from_trips(reversed(TRIPS))
    assert tracker.stats("AAPL").trades == 3
    earlier = tracker.at(date(2016, 3, 4))  # trips closed 2016-03-01..03 (21:00 UTC = 16:00 New York)
    assert [t.exit_order_id for t in earlier.trips] == ["s0", "s1", "s2"]
    assert earlier.stats("AAPL").trades == 1
    assert [row.symbol for row in tracker.top(2)] == ["AAPL", "MSFT"]  # by P&L: 90, then -30 (XOM -30, 1 trade)
    assert [row.symbol for row in tracker.top(5, min_trades=2)] == ["AAPL", "MSFT"]
    assert tracker.recent_win_ratio("AAPL", 2) == 0.5  # the last two: 0 and +40
    assert tracker.recent_win_ratio("XOM", 3) == 0.0
    assert tracker.recent_win_ratio("JPM", 3) is None
