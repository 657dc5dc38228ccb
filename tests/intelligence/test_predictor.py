"""The risk agent's and the dashboard's predictions come from the features the model was trained on."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np

from agents.win_probability import WinPredictor
from core.messages import SignalGenerated
from core.order_ids import signal_correlation_id
from core.timeconv import datetime64_to_datetime, ny_dates
from core.types import OrderSide
from intelligence.dataset import Dataset
from intelligence.features import FEATURE_LOOKBACK
from intelligence.model import fit
from intelligence.predictor import MLPredictor
from tests.intelligence.conftest import SMALL_FOREST
from tradingd.web.selection import CandidatePredictor


def _signal(dataset: Dataset, i: int) -> SignalGenerated:
    s = dataset.samples
    bar_ts = datetime64_to_datetime(dataset.frame.timestamps[s.row[i]])
    symbol = dataset.frame.symbols[s.col[i]]
    return SignalGenerated(
        ts_event=bar_ts,
        ts_init=bar_ts,
        correlation_id=signal_correlation_id("zscore_mr", symbol, OrderSide.BUY, bar_ts),
        strategy="zscore_mr",
        symbol=symbol,
        side=OrderSide.BUY,
        is_exit=False,
        price=Decimal(1),
        score=1.0,
        volatility=0.1,
        bar_ts=bar_ts,
        reason="test",
    )


def test_a_signals_prediction_is_the_models_answer_on_its_training_features(dataset: Dataset) -> None:
    s = dataset.samples
    model = fit(dataset.features, s.win, s.ret, SMALL_FOREST)
    predictor = MLPredictor(model, dataset.frame, s)
    assert isinstance(predictor, WinPredictor)
    assert isinstance(predictor, CandidatePredictor)
    picked = np.linspace(0, len(s) - 1, 25).astype(int)
    signals = [_signal(dataset, int(i)) for i in picked]
    answers = predictor.predict(signals)
    expected = model.probability(dataset.features[picked])
    for signal, p in zip(signals, expected, strict=True):
        assert answers[signal.correlation_id].win_probability == p
        assert 0 <= answers[signal.correlation_id].confidence < 1


def test_the_dashboards_prediction_as_of_a_session_is_the_signals_on_that_bar(dataset: Dataset) -> None:
    s = dataset.samples
    model = fit(dataset.features, s.win, s.ret, SMALL_FOREST)
    predictor = MLPredictor(model, dataset.frame, s)
    i = int(np.flatnonzero(s.row > FEATURE_LOOKBACK + 10)[0])
    session = ny_dates(dataset.frame.timestamps_ns[int(s.row[i]) : int(s.row[i]) + 1]).astype(object)[0]
    symbol = dataset.frame.symbols[s.col[i]]
    latest = predictor.predict_as_of([symbol, "NOT_THERE"], session)
    assert set(latest) == {symbol}
    assert latest[symbol].win_probability == model.probability(dataset.features[i : i + 1])[0]
    assert predictor.predict_as_of([symbol], date(1990, 1, 2)) == {}  # before the history


def test_a_signal_outside_the_history_gets_no_prediction(dataset: Dataset) -> None:
    s = dataset.samples
    predictor = MLPredictor(fit(dataset.features, s.win, s.ret, SMALL_FOREST), dataset.frame, s)
    signal = _signal(dataset, 0)
    assert predictor.predict([signal.__class__(**{**_fields(signal), "symbol": "ZZZZ"})]) == {}


def _fields(signal: SignalGenerated) -> dict[str, object]:
    return {name: getattr(signal, name) for name in signal.__dataclass_fields__ if name != "id"}
