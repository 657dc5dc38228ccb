"""`MLPredictor`: the saved model answering the risk agent (`agents/win_probability.py::WinPredictor`) and the
dashboard (`predict_as_of`, `tradingd/web/selection.py::CandidatePredictor`), with the training's own feature function
(`intelligence/dataset.py`).

It holds the history the features are read from (in sim: the bundled bars, cleaned as the DataAgent cleans them) and
the strategy's simulated trades on it (the tracker features). A signal on bar t gets the features of row t: the
window up to t and the trades closed before t, so nothing after the bar can reach a decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import numpy as np

from agents.win_probability import Prediction
from core.messages import SignalGenerated
from core.timeconv import datetime_to_ns, ny_dates
from core.types import BarFrame, FloatArray
from intelligence.dataset import sample_features, track_record
from intelligence.labels import Samples
from intelligence.model import WinModel


class MLPredictor:
    def __init__(self, model: WinModel, history: BarFrame, trips: Samples) -> None:
        self.model = model
        self._history = history
        self._record = track_record(trips)
        self._column = {symbol: col for col, symbol in enumerate(history.symbols)}
        self._stamps = history.timestamps_ns
        self._days = ny_dates(self._stamps).astype("datetime64[D]")

    def _predictions(self, features: FloatArray) -> list[Prediction]:
        p = self.model.probability(features)
        expected = self.model.expected_return(p)
        confidence = self.model.confidence
        return [
            Prediction(win_probability=float(pi), expected_return=float(ei), confidence=confidence)
            for pi, ei in zip(p.tolist(), expected.tolist(), strict=True)
        ]

    def unavailable(self) -> str | None:
        return None  # its history is given whole at construction

    def predict(self, signals: Sequence[SignalGenerated]) -> Mapping[str, Prediction]:
        """Per correlation id; a signal whose symbol or bar the history lacks gets none."""
        keys: list[str] = []
        rows: list[int] = []
        cols: list[int] = []
        for signal in signals:
            col = self._column.get(signal.symbol)
            stamp = datetime_to_ns(signal.bar_ts)
            row = int(np.searchsorted(self._stamps, stamp))
            if col is None or row >= self._stamps.size or self._stamps[row] != stamp:
                continue
            keys.append(signal.correlation_id)
            rows.append(row)
            cols.append(col)
        return self._at(keys, rows, cols)

    def predict_as_of(self, symbols: Sequence[str], as_of: date) -> Mapping[str, Prediction]:
        """Per symbol, on its history's last bar dated on or before `as_of` (New York): the dashboard's latest
        candidates (`tradingd/web/selection.py::CandidatePredictor`), through the same features as a signal's."""
        row = int(np.searchsorted(self._days, np.datetime64(as_of, "D"), side="right")) - 1
        known = [s for s in symbols if s in self._column]
        if row < 0 or not known:
            return {}
        return self._at(known, [row] * len(known), [self._column[s] for s in known])

    def _at(self, keys: list[str], rows: list[int], cols: list[int]) -> Mapping[str, Prediction]:
        if not keys:
            return {}
        where = Samples(
            row=np.asarray(rows, dtype=np.intp),
            col=np.asarray(cols, dtype=np.intp),
            score=np.full(len(rows), np.nan),
            entry_row=np.asarray(rows, dtype=np.intp),
            exit_row=np.asarray(rows, dtype=np.intp),
            ret=np.full(len(rows), np.nan),
            exit_kind=np.zeros(len(rows), dtype=np.int8),
        )
        features = sample_features(self._history, where, self._record)
        return dict(zip(keys, self._predictions(features), strict=True))
