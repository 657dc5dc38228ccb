"""Tests for agents/focus_scoring.py: intraday re-scoring only in market hours, on schedule, from real bars.

The replay shows a session's daily bar from midnight of that session, so at 11:00 ET the "live" price and volume are
that session's real close and volume: good enough to check the arithmetic against pandas.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.focus_scoring import SCORES_FLAG, FocusScorer, persisted_scores
from core.broker.replay import ReplayMarketData
from core.clock import NyseCalendar, SimClock
from core.store import StateStore
from core.types import BarFrame

SYMBOLS = ("AAPL", "MSFT", "XOM", "JPM")
SESSION = date(2018, 2, 7)
OPEN = datetime(2018, 2, 7, 14, 30, tzinfo=UTC)  # 09:30 EST
LATE_MORNING = datetime(2018, 2, 7, 16, 0, tzinfo=UTC)  # 11:00 EST


def scorer_at(
    history: BarFrame, calendar: NyseCalendar, now: datetime, store: StateStore | None = None
) -> tuple[FocusScorer, ReplayMarketData, SimClock]:
    clock = SimClock(now)
    market = ReplayMarketData(history, clock)
    return FocusScorer(market, calendar, interval_minutes=15, store=store), market, clock


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2018, 2, 10, 16, 0, tzinfo=UTC),  # Saturday
        datetime(2018, 2, 7, 13, 0, tzinfo=UTC),  # 08:00 EST, before the open
        datetime(2018, 2, 7, 21, 30, tzinfo=UTC),  # 16:30 EST, after the close
        datetime(2018, 1, 15, 16, 0, tzinfo=UTC),  # MLK day
    ],
)
async def test_no_scoring_outside_market_hours(
    small_history: BarFrame, calendar: NyseCalendar, moment: datetime
) -> None:
    scorer, market, _ = scorer_at(small_history, calendar, moment)
    assert not scorer.due(moment)
    assert await scorer.run(SYMBOLS, moment) is None
    assert market.api_calls == 0
    assert scorer.latest_scores(moment)["scored_at"] is None


async def test_scores_match_the_formulas_on_real_bars(small_history: BarFrame, calendar: NyseCalendar) -> None:
    scorer, _, _ = scorer_at(small_history, calendar, LATE_MORNING)
    assert scorer.due(LATE_MORNING)
    result = await scorer.run(SYMBOLS, LATE_MORNING)
    assert result is not None
    close = pd.DataFrame(small_history.close, columns=small_history.symbols)[list(SYMBOLS)]
    volume = pd.DataFrame(small_history.volume, columns=small_history.symbols)[list(SYMBOLS)]
    window = close.iloc[-20:]
    z = ((window.iloc[-1] - window.mean()) / window.std()).to_dict()
    elapsed = 1.5 / 6.5  # 90 minutes into a 390-minute session
    pace = (volume.iloc[-1] / (volume.iloc[-21:-1].mean() * elapsed)).to_dict()
    by_symbol = {s.symbol: s for s in result.scores}
    assert set(by_symbol) == set(SYMBOLS)
    for symbol, score in by_symbol.items():
        assert score.zscore == pytest.approx(z[symbol], abs=1e-4)
        assert score.rvol_pace == pytest.approx(pace[symbol], abs=1e-4)
        assert score.score is not None
        assert score.explosion_factors == ("momentum", "rvol", "change_pct", "price_level")
    scores = [s.score for s in result.scores]
    assert scores == sorted(scores, reverse=True)


async def test_first_interval_has_no_volume_pace_and_renormalises(
    small_history: BarFrame, calendar: NyseCalendar
) -> None:
    scorer, _, _ = scorer_at(small_history, calendar, OPEN)
    result = await scorer.run(SYMBOLS, OPEN)
    assert result is not None
    for score in result.scores:
        assert score.rvol_pace is None  # not extrapolated from a few minutes of volume
        assert score.score is None
        assert score.explosion_factors == ("momentum", "change_pct", "price_level")
        assert score.explosion_probability is not None


async def test_rescoring_waits_for_the_interval_and_reuses_the_previous_sessions(
    small_history: BarFrame, calendar: NyseCalendar
) -> None:
    scorer, market, clock = scorer_at(small_history, calendar, LATE_MORNING)
    await scorer.run(SYMBOLS, LATE_MORNING)
    assert market.api_calls == 2  # one batched bars request, one snapshot request
    clock.advance(14 * 60)
    assert not scorer.due(clock.now())
    assert scorer.latest_scores(clock.now())["age_s"] == 14 * 60
    clock.advance(60)
    assert scorer.due(clock.now())
    await scorer.run(SYMBOLS, clock.now())
    assert market.api_calls == 3  # the previous sessions' bars are not fetched again


async def test_scores_are_persisted_for_tradingd_status(
    tmp_path: Path, small_history: BarFrame, calendar: NyseCalendar
) -> None:
    with StateStore(tmp_path / "state.db") as store:
        scorer, _, _ = scorer_at(small_history, calendar, LATE_MORNING, store)
        await scorer.run(SYMBOLS, LATE_MORNING)
        later = datetime(2018, 2, 7, 16, 10, tzinfo=UTC)
        shown = persisted_scores(store, later, 15)
        assert shown["age_s"] == 600
        assert shown == scorer.latest_scores(later)
        assert {s["symbol"] for s in shown["scores"]} == set(SYMBOLS)
        store.set_flag(SCORES_FLAG, "{broken")
        assert persisted_scores(store, later, 15)["scores"] == []


async def test_symbol_without_a_snapshot_is_skipped_and_counted(
    small_history: BarFrame, calendar: NyseCalendar
) -> None:
    scorer, _, _ = scorer_at(small_history, calendar, LATE_MORNING)
    result = await scorer.run(("AAPL", "SPY"), LATE_MORNING)  # SPY is not in the bundled data
    assert result is not None
    assert [s.symbol for s in result.scores] == ["AAPL"]
    assert result.skipped == {"no_snapshot": 1}
    assert np.isfinite(result.scores[0].price)
