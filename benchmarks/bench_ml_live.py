"""What `ML_ENABLED=true` costs a paper/live daemon once a session: rebuilding the model's history
(`tradingd/ml_live.py::LiveWinPredictor.refresh`) over `HISTORY_SESSIONS` daily bars of the daemon's symbols.

The market-data port is an in-memory one here (slicing the bundled bars), so the figures are the daemon's own work:
cleaning the bars, the strategy's signals and simulated trades (the tracker features) and the predictor's set-up;
the baseline in the same run is the port's call alone. A real rebuild adds what the adapter's bar cache does not hold
(after the first day: the new bar, which the DataAgent's own fetch has already cached). Medians of `REPEATS`; for the
paper default universe (its symbols in the bundled bars) and 500 symbols. Nothing is asserted.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from agents.strategies.zscore_mean_reversion import ZScoreMeanReversion, ZScoreParams
from config.settings import PAPER_TIERS, Settings
from core.bars import load_daily_bars
from core.broker.base import Progress, Snapshot
from core.clock import NyseCalendar
from core.logging import configure_logging
from core.timeconv import datetime64_to_datetime, datetime_to_ns
from core.types import BarFrame
from intelligence.dataset import build_dataset
from intelligence.labels import ExitRules
from intelligence.model import ForestParams, fit
from tradingd.ml_live import HISTORY_SESSIONS, LiveWinPredictor

REPEATS = 5
FIELDS = ("open", "high", "low", "close", "volume")


class InMemoryBars:
    """The `MarketData` port over a loaded frame: `get_bars` slices it by time (a copy, as an adapter's answer)."""

    def __init__(self, history: BarFrame) -> None:
        self._history = history
        self._stamps = history.timestamps.view(np.int64)
        self.api_calls = 0

    async def get_bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, *, on_progress: Progress | None = None
    ) -> BarFrame:
        self.api_calls += 1
        lo, hi = np.searchsorted(self._stamps, [datetime_to_ns(start), datetime_to_ns(end)])
        cols = [self._history.symbols.index(s) for s in symbols]
        rows = slice(int(lo), int(hi))
        arrays = {f: getattr(self._history, f)[rows][:, cols].copy() for f in FIELDS}
        return BarFrame(symbols=tuple(symbols), timestamps=self._history.timestamps[rows].copy(), **arrays)

    async def get_snapshots(self, symbols: Sequence[str]) -> dict[str, Snapshot]:
        return {}


def _median_ms(work: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        work()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000, 1)


def run() -> dict[str, Any]:
    configure_logging("json", "ERROR")  # stdout carries the JSON lines only
    bundled = load_daily_bars(Settings().sim_data_file)
    strategy, rules = ZScoreMeanReversion(ZScoreParams()), ExitRules()
    small = [s for s in PAPER_TIERS if s in bundled.symbols]
    train = build_dataset(_columns(bundled, small), strategy, rules)
    model = fit(train.features, train.samples.win, train.samples.ret, ForestParams(n_estimators=10))
    calendar = NyseCalendar()
    result: dict[str, Any] = {"target": "reported: once a session with ML_ENABLED in paper/live", "sessions": 0}
    for label, symbols in (("paper_default", small), ("500", list(bundled.symbols[:500]))):
        history = _columns(bundled, symbols)
        port = InMemoryBars(history)
        window = _columns(history, symbols, rows=slice(-21, None))  # the DataAgent's window: the newest bar last

        def rebuild(port: InMemoryBars = port, window: BarFrame = window) -> LiveWinPredictor:
            predictor = LiveWinPredictor(model, strategy, rules, port, calendar)
            asyncio.run(predictor.refresh(window))
            return predictor

        built = rebuild()
        assert built.unavailable() is None
        start, end = history.timestamps[-HISTORY_SESSIONS], history.timestamps[-1]
        span = (datetime64_to_datetime(start), datetime64_to_datetime(end))

        def fetch(
            port: InMemoryBars = port, symbols: list[str] = symbols, span: tuple[datetime, datetime] = span
        ) -> BarFrame:
            return asyncio.run(port.get_bars(symbols, *span))

        fetch_ms = _median_ms(fetch)
        rebuild_ms = _median_ms(rebuild)
        result[f"symbols_{label}"] = len(symbols)
        result[f"fetch_only_ms_{label}"] = fetch_ms
        result[f"rebuild_ms_{label}"] = rebuild_ms
    result["sessions"] = HISTORY_SESSIONS
    return result


def _columns(frame: BarFrame, symbols: Sequence[str], rows: slice = slice(None)) -> BarFrame:
    cols = [frame.symbols.index(s) for s in symbols]
    arrays = {f: getattr(frame, f)[rows][:, cols] for f in FIELDS}
    return BarFrame(symbols=tuple(symbols), timestamps=frame.timestamps[rows], **arrays)
