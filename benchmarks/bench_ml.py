"""The win-probability model's costs (issue 16): building the samples, fitting, and what ML_ENABLED adds per iteration.

On the bundled bars with the default strategy and exits: `build_dataset` (signals, simulated trades, features of every
sample), one fit of the default forest on every sample, and per iteration batch of 5 entry signals (a busy session of
the default run) the features alone and the whole prediction (features + the calibrated forest), medians of
`REPEATS`. The baseline in the same run is the features alone: what the model itself adds is the difference. Nothing
is asserted.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from agents.strategies.zscore_mean_reversion import ZScoreMeanReversion, ZScoreParams
from config.settings import Settings
from core.bars import load_daily_bars
from core.messages import SignalGenerated
from core.order_ids import signal_correlation_id
from core.timeconv import datetime64_to_datetime
from core.types import OrderSide, bar_price
from intelligence.dataset import Dataset, build_dataset, sample_features, track_record
from intelligence.labels import ExitRules
from intelligence.model import fit
from intelligence.predictor import MLPredictor

REPEATS = 30
BATCH = 5


def _median_ms(work: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        work()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000, 2)


def _signals(dataset: Dataset, index: np.ndarray) -> list[SignalGenerated]:
    made = []
    for i in index.tolist():
        bar_ts = datetime64_to_datetime(dataset.frame.timestamps[dataset.samples.row[i]])
        symbol = dataset.frame.symbols[dataset.samples.col[i]]
        made.append(
            SignalGenerated(
                ts_event=bar_ts,
                ts_init=bar_ts,
                correlation_id=signal_correlation_id("zscore_mr", symbol, OrderSide.BUY, bar_ts),
                strategy="zscore_mr",
                symbol=symbol,
                side=OrderSide.BUY,
                is_exit=False,
                price=bar_price(float(dataset.frame.close[dataset.samples.row[i], dataset.samples.col[i]])),
                score=1.0,
                volatility=0.0,
                bar_ts=bar_ts,
                reason="bench",
            )
        )
    return made


def run() -> dict[str, Any]:
    history = load_daily_bars(Settings().sim_data_file)
    t = time.perf_counter()
    dataset = build_dataset(history, ZScoreMeanReversion(ZScoreParams()), ExitRules())
    dataset_s = time.perf_counter() - t
    s = dataset.samples
    t = time.perf_counter()
    model = fit(dataset.features, s.win, s.ret)
    fit_s = time.perf_counter() - t
    predictor = MLPredictor(model, dataset.frame, s)
    index = np.flatnonzero(s.row == np.bincount(s.row).argmax())[:BATCH]  # the busiest session's first entries
    signals = _signals(dataset, index)
    record = track_record(s)
    batch = s.take(index)
    features_ms = _median_ms(lambda: sample_features(dataset.frame, batch, record))
    predict_ms = _median_ms(lambda: predictor.predict(signals))
    return {
        "target": "reported: the cost ML_ENABLED adds per iteration with entries (ML off: none)",
        "samples": len(s),
        "build_dataset_s": round(dataset_s, 2),
        "fit_s": round(fit_s, 2),
        "batch": len(signals),
        "features_ms": features_ms,
        "predict_ms": predict_ms,
        "model_share_of_predict": round((predict_ms - features_ms) / predict_ms, 2) if predict_ms else None,
    }
