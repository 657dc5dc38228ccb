"""`LiveWinPredictor.refresh`: when the paper/live model's history is rebuilt, over an in-memory market-data port on
the seven small-history symbols (the fake Alpaca server's version is tests/e2e/test_paper_ml.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from agents.strategies.zscore_mean_reversion import ZScoreMeanReversion, ZScoreParams
from core.broker.base import Progress, Snapshot, TransientBrokerError
from core.clock import NyseCalendar
from core.timeconv import datetime_to_ns
from core.types import BarFrame
from intelligence.labels import ExitRules
from tradingd.ml_live import HISTORY_SESSIONS, LiveWinPredictor

FIELDS = ("open", "high", "low", "close", "volume")


class Port:
    """`get_bars` slices the frame by time; `fail` makes the next calls raise as the adapter does after retries."""

    def __init__(self, history: BarFrame) -> None:
        self.history = history
        self.calls: list[tuple[tuple[str, ...], datetime, datetime]] = []
        self.fail = 0

    async def get_bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, *, on_progress: Progress | None = None
    ) -> BarFrame:
        self.calls.append((tuple(symbols), start, end))
        if self.fail:
            self.fail -= 1
            raise TransientBrokerError("data API unavailable")
        stamps = self.history.timestamps.view(np.int64)
        lo, hi = np.searchsorted(stamps, [datetime_to_ns(start), datetime_to_ns(end)])
        cols = [self.history.symbols.index(s) for s in symbols]
        arrays = {f: getattr(self.history, f)[lo:hi][:, cols] for f in FIELDS}
        return BarFrame(symbols=tuple(symbols), timestamps=self.history.timestamps[lo:hi], **arrays)

    async def get_snapshots(self, symbols: Sequence[str]) -> dict[str, Snapshot]:
        return {}

    @property
    def api_calls(self) -> int:
        return len(self.calls)


def window(history: BarFrame, symbols: Sequence[str], end: int) -> BarFrame:
    """The DataAgent's window: 21 rows ending at row `end - 1`."""
    cols = [history.symbols.index(s) for s in symbols]
    arrays = {f: getattr(history, f)[end - 21 : end][:, cols] for f in FIELDS}
    return BarFrame(symbols=tuple(symbols), timestamps=history.timestamps[end - 21 : end], **arrays)


@pytest.fixture
def setup(small_history: BarFrame) -> tuple[LiveWinPredictor, Port]:
    port = Port(small_history)
    model: Any = object()  # never asked here: refresh only builds the history the model reads
    strategy = ZScoreMeanReversion(ZScoreParams())
    return LiveWinPredictor(model, strategy, ExitRules(), port, NyseCalendar()), port


def test_built_once_per_new_bar_or_new_symbol_in_one_batched_call(
    setup: tuple[LiveWinPredictor, Port], small_history: BarFrame
) -> None:
    predictor, port = setup
    end = small_history.n_rows - 5
    assert predictor.unavailable() is not None  # nothing fetched yet: entries would be denied ml_unavailable

    asyncio.run(predictor.refresh(window(small_history, ["AAPL", "MSFT"], end)))
    assert predictor.unavailable() is None
    ((symbols, start, stop),) = port.calls
    assert symbols == ("AAPL", "MSFT")  # one call for all of them: the adapter chunks it
    calendar = NyseCalendar()
    sessions = calendar.sessions_in_range(start.date(), stop.date())
    assert len([s for s in sessions if calendar.daily_bar_ts(s) < stop]) == HISTORY_SESSIONS

    asyncio.run(predictor.refresh(window(small_history, ["AAPL", "MSFT"], end)))  # later that session: same bars
    asyncio.run(predictor.refresh(window(small_history, ["MSFT"], end)))  # fewer symbols: still covered
    assert len(port.calls) == 1
    asyncio.run(predictor.refresh(window(small_history, ["AAPL", "MSFT"], end + 1)))  # the next session's bar
    asyncio.run(predictor.refresh(window(small_history, ["AAPL", "MSFT", "XOM"], end + 1)))  # a new symbol
    assert len(port.calls) == 3
    assert predictor.rebuilds == 3
    assert predictor.history_symbols == {"AAPL", "MSFT", "XOM"}


def test_a_failed_fetch_leaves_no_model_and_the_next_call_retries(
    setup: tuple[LiveWinPredictor, Port], small_history: BarFrame
) -> None:
    predictor, port = setup
    end = small_history.n_rows - 5
    asyncio.run(predictor.refresh(window(small_history, ["AAPL"], end)))
    port.fail = 1
    asyncio.run(predictor.refresh(window(small_history, ["AAPL"], end + 1)))
    why = predictor.unavailable()
    assert why is not None
    assert why.startswith("the model's history could not be fetched (TransientBrokerError")
    assert predictor.predict_as_of(["AAPL"], datetime.now().date()) == {}
    asyncio.run(predictor.refresh(window(small_history, ["AAPL"], end + 1)))  # the same bar: retried anyway
    assert predictor.unavailable() is None
    assert len(port.calls) == 3
