"""RVOL breakout on the real bundled bars: each signal checked against a channel computed by hand from the CSV rows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from agents.strategies.base import Holdings
from agents.strategies.rvol_breakout import BreakoutParams, RvolBreakout, channel
from core.types import BarFrame, Position
from tests.conftest import DATA_FILE
from tests.frames import frame_at

STRATEGY = RvolBreakout(BreakoutParams())


@pytest.fixture(scope="module")
def aapl_rows() -> list[dict[str, Any]]:
    """AAPL's rows of the bundled CSV, oldest first, as plain dicts."""
    table = pd.read_csv(DATA_FILE)
    return table[table["symbol"] == "AAPL"].sort_values("date").to_dict("records")


def by_hand(rows: list[dict[str, Any]], day: str) -> dict[str, float]:
    """The channel of `day` from the CSV rows: the 20 and 10 rows before it, today excluded."""
    i = next(n for n, row in enumerate(rows) if row["date"] == day)
    previous20, previous10 = rows[i - 20 : i], rows[i - 10 : i]
    return {
        "close": rows[i]["close"],
        "high20": max(row["high"] for row in previous20),
        "low10": min(row["low"] for row in previous10),
        "rvol": rows[i]["volume"] / (sum(row["volume"] for row in previous20) / 20),
    }


def row_of(history: BarFrame, day: str) -> int:
    days = pd.DatetimeIndex(history.timestamps).tz_localize("UTC").tz_convert("America/New_York").date
    return int(np.flatnonzero(days == date.fromisoformat(day))[0])


def held(history: BarFrame, symbols: dict[str, float]) -> Holdings:
    positions = {s: Position(s, Decimal(1), Decimal(str(p)), Decimal(str(p))) for s, p in symbols.items()}
    return Holdings.of({s: i for i, s in enumerate(history.symbols)}, len(history.symbols), positions)


def test_aapl_breaks_out_on_2014_04_24_above_its_20_day_high_on_3x_volume(
    small_history: BarFrame, aapl_rows: list[dict[str, Any]]
) -> None:
    hand = by_hand(aapl_rows, "2014-04-24")
    assert hand["close"] > hand["high20"]
    assert hand["rvol"] >= 1.5
    col = small_history.symbols.index("AAPL")
    frame = frame_at(small_history, row_of(small_history, "2014-04-24"), rows=STRATEGY.lookback)
    signals = STRATEGY.signals(frame, held(small_history, {}))
    assert signals.entries[col]
    assert channel(frame, STRATEGY.params).high[col] == hand["high20"]
    assert signals.reasons[col] == (
        f"close {hand['close']:.2f} > 20-day high {hand['high20']:.2f}, rvol {hand['rvol']:.2f}"
    )
    assert signals.score[col] == pytest.approx(min(hand["close"] / hand["high20"] - 1, hand["rvol"] / 1.5 - 1) * 100)
    # Already held: no second entry.
    assert not STRATEGY.signals(frame, held(small_history, {"AAPL": 70.0})).entries[col]


def test_a_new_high_on_ordinary_volume_is_no_entry(small_history: BarFrame, aapl_rows: list[dict[str, Any]]) -> None:
    hand = by_hand(aapl_rows, "2013-08-19")
    assert hand["close"] > hand["high20"]
    assert hand["rvol"] < 1.5  # 1.40x
    col = small_history.symbols.index("AAPL")
    frame = frame_at(small_history, row_of(small_history, "2013-08-19"), rows=STRATEGY.lookback)
    assert not STRATEGY.signals(frame, held(small_history, {})).entries[col]
    assert STRATEGY.entry_score(frame)[col] < 0
    lenient = RvolBreakout(BreakoutParams(min_rvol=1.4))
    assert lenient.signals(frame, held(small_history, {})).entries[col]


def test_a_held_aapl_exits_on_2015_08_24_below_its_10_day_low(
    small_history: BarFrame, aapl_rows: list[dict[str, Any]]
) -> None:
    hand = by_hand(aapl_rows, "2015-08-24")
    assert hand["close"] < hand["low10"]
    col = small_history.symbols.index("AAPL")
    frame = frame_at(small_history, row_of(small_history, "2015-08-24"), rows=STRATEGY.lookback)
    signals = STRATEGY.signals(frame, held(small_history, {"AAPL": 110.0}))
    assert signals.exits[col]
    assert signals.reasons[col] == f"close {hand['close']:.2f} < 10-day low {hand['low10']:.2f}"
    assert not STRATEGY.signals(frame, held(small_history, {})).exits[col]  # nothing to exit


def test_a_missing_bar_in_the_window_leaves_the_symbol_without_a_signal(small_history: BarFrame) -> None:
    col = small_history.symbols.index("DHR")
    bad = int(np.flatnonzero(np.isnan(small_history.high[:, col]) & np.isfinite(small_history.close[:, col]))[0])
    frame = frame_at(small_history, bad + 5, rows=STRATEGY.lookback)
    assert np.isnan(channel(frame, STRATEGY.params).high[col])
    signals = STRATEGY.signals(frame, held(small_history, {"DHR": 1e6}))
    assert not signals.entries[col]
    assert not signals.exits[col]
    assert np.isnan(STRATEGY.entry_score(frame)[col])


def test_entry_score_is_non_negative_exactly_where_it_enters(small_history: BarFrame) -> None:
    empty = held(small_history, {})
    entered = 0
    for row in range(STRATEGY.lookback, len(small_history.timestamps), 3):
        frame = frame_at(small_history, row, rows=STRATEGY.lookback)
        entries = STRATEGY.signals(frame, empty).entries
        np.testing.assert_array_equal(STRATEGY.entry_score(frame) >= 0, entries)
        entered += int(entries.sum())
    assert entered > 20


def test_lookback_covers_the_longest_window() -> None:
    assert STRATEGY.lookback == 21
    assert RvolBreakout(BreakoutParams(high_days=55, low_days=20)).lookback == 56
