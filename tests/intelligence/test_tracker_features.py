"""The tracker features are `PerformanceTracker`'s statistics as of each sample's bar, computed for all at once."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

import numpy as np

from analytics.model import RoundTrip
from analytics.trades import PerformanceTracker, trade_stats
from core.exit_reasons import ExitReason
from core.timeconv import datetime64_to_datetime
from intelligence.dataset import Dataset, session_date
from intelligence.tracker_features import RECENT_TRADES, TRACKER_FEATURES, tracker_features


def _trip(dataset: Dataset, i: int) -> RoundTrip:
    s = dataset.samples
    exit_time = datetime64_to_datetime(dataset.frame.timestamps[s.exit_row[i]]) + timedelta(hours=14)
    return RoundTrip(
        symbol=dataset.frame.symbols[s.col[i]],
        tier=None,
        # Same-day exits keep the sample order, as the vectorised sort does.
        entry_time=exit_time - timedelta(days=1),
        exit_time=exit_time + timedelta(microseconds=int(s.row[i])),
        qty=Decimal(1),
        entry_price=Decimal(1),
        exit_price=Decimal(1) + Decimal(repr(float(s.ret[i]))),
        pnl=Decimal(repr(float(s.ret[i]))),
        pnl_pct=float(s.ret[i]) * 100.0,
        days_held=1.0,
        exit_reason=ExitReason.SIGNAL,
        entry_order_id=str(i),
        exit_order_id=str(i),
    )


def _close(a: float | None, b: float) -> bool:
    return math.isnan(b) if a is None else math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def test_they_equal_the_performance_tracker_as_of_each_bar(dataset: Dataset) -> None:
    s = dataset.samples
    tracker = PerformanceTracker.from_trips(_trip(dataset, i) for i in range(len(s)))
    features = tracker_features(s.col, s.exit_row, s.ret, s.row, s.col)
    checked = 0
    for i in range(0, len(s), 7):
        symbol = dataset.frame.symbols[s.col[i]]
        known = tracker.at(session_date(dataset.frame, int(s.row[i])))
        stats = known.stats(symbol)
        detail = trade_stats(known.symbol_trips(symbol))
        expected = (
            stats.trades,
            stats.wins,
            stats.losses,
            stats.win_rate_pct,
            stats.profit_factor,
            detail.avg_win_pct,
            detail.avg_loss_pct,
            known.recent_win_ratio(symbol, RECENT_TRADES),
        )
        assert all(_close(e, f) for e, f in zip(expected, features[i], strict=True)), (i, expected, features[i])
        checked += stats.trades > 0
    assert checked > 20
    assert features.shape[1] == len(TRACKER_FEATURES)


def test_a_symbol_without_trades_yet_has_nan_rates_and_zero_counts() -> None:
    cols = np.array([0, 1])
    features = tracker_features(cols, np.array([5, 5]), np.array([0.02, -0.01]), np.array([5, 6]), np.array([0, 1]))
    assert features[0, :3].tolist() == [0.0, 0.0, 0.0]
    assert np.isnan(features[0, 3:]).all()
    assert features[1, :3].tolist() == [1.0, 0.0, 1.0]
    assert features[1, 4] == 0.0
    assert np.isnan(features[1, 5])  # no win: no average win
