from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from agents.strategies.base import Holdings
from agents.strategies.zscore_mean_reversion import ZScoreMeanReversion, ZScoreParams, zscore
from core.types import BarFrame, Position
from tests.frames import frame_at

STRATEGY = ZScoreMeanReversion(ZScoreParams())


def holdings(history: BarFrame, held: dict[str, float]) -> Holdings:
    positions = {s: Position(s, Decimal(1), Decimal(str(p)), Decimal(str(p))) for s, p in held.items()}
    return Holdings.of({s: i for i, s in enumerate(history.symbols)}, len(history.symbols), positions)


def pandas_z(history: BarFrame, symbol: str) -> pd.Series:
    closes = pd.Series(history.close[:, history.symbols.index(symbol)])
    return (closes - closes.rolling(20).mean()) / closes.rolling(20).std()


def test_zscore_matches_pandas_rolling_on_real_closes(small_history: BarFrame) -> None:
    row = 900
    closes = pd.DataFrame(small_history.close[: row + 1], columns=small_history.symbols)
    rolling = closes.rolling(20)
    expected = ((closes - rolling.mean()) / rolling.std()).iloc[-1].to_numpy()
    np.testing.assert_allclose(zscore(frame_at(small_history, row), 20), expected, rtol=1e-9, equal_nan=True)


def test_incomplete_window_or_missing_latest_bar_gives_no_zscore(small_history: BarFrame) -> None:
    assert np.isnan(zscore(frame_at(small_history, 10, rows=11), 20)).all()
    frame = frame_at(small_history, 700)
    close = frame.close.copy()
    close[-1, :] = np.nan
    broken = BarFrame(frame.symbols, frame.timestamps, frame.open, frame.high, frame.low, close, frame.volume)
    assert np.isnan(zscore(broken, 20)).all()


def test_enters_aapl_on_the_first_close_two_deviations_below_its_mean(small_history: BarFrame) -> None:
    z = pandas_z(small_history, "AAPL")
    row = int(z[z <= -2.0].index[z[z <= -2.0].index > 100][0])
    col = small_history.symbols.index("AAPL")
    signals = STRATEGY.signals(frame_at(small_history, row), holdings(small_history, {}))
    assert signals.entries[col]
    assert not signals.exits.any()  # nothing is held
    assert signals.score[col] == pytest.approx(-z[row], rel=1e-9)  # score = −z
    assert signals.reasons[col] == f"zscore {z[row]:.2f} <= entry"


def test_a_held_symbol_exits_back_at_its_mean_and_is_not_entered_again(small_history: BarFrame) -> None:
    z = pandas_z(small_history, "MSFT")
    exit_row = int(z[z >= 0.0].index[z[z >= 0.0].index > 100][0])
    entry_row = int(z[z <= -2.0].index[z[z <= -2.0].index > 100][0])
    col = small_history.symbols.index("MSFT")
    held = holdings(small_history, {"MSFT": 30.0})
    assert STRATEGY.signals(frame_at(small_history, exit_row), held).exits[col]
    assert not STRATEGY.signals(frame_at(small_history, entry_row), held).entries[col]


def test_entry_score_is_non_negative_exactly_where_it_enters(small_history: BarFrame) -> None:
    empty = holdings(small_history, {})
    entered = 0
    for row in range(25, len(small_history.timestamps), 7):
        frame = frame_at(small_history, row)
        score = STRATEGY.entry_score(frame)
        entries = STRATEGY.signals(frame, empty).entries
        np.testing.assert_array_equal(score >= 0, entries)
        entered += int(entries.sum())
    assert entered > 10
