"""`tradingd ml train`: one model on everything before a held-out final period, and its results on that period.

The held-out period is the last `holdout_sessions` (252: a year) of the history; the model trains on the samples whose
label was known at or before holdout start − embargo − 1 (the embargo as in the walk-forward folds), and is scored on
the signals of the held-out period, which it never saw. `tradingd replay --ml --start <holdout_start>` against
`tradingd replay --start <holdout_start>` then compares the daemon with and without it over that period.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import numpy as np

from intelligence.dataset import FEATURE_NAMES, Dataset, session_date
from intelligence.labels import ExitRules, embargo_sessions
from intelligence.model import ForestParams
from intelligence.model_file import SavedModel, plain_params
from intelligence.walk_forward import EMBARGO_CAP, fit_window, metrics, training_index

HOLDOUT_SESSIONS: Final = 252


def train(
    dataset: Dataset,
    *,
    strategy: str,
    strategy_params: Any,
    rules: ExitRules,
    holdout_sessions: int = HOLDOUT_SESSIONS,
    params: ForestParams | None = None,
    data_file: str = "",
) -> SavedModel:
    params = params or ForestParams()
    samples = dataset.samples
    n_rows = dataset.frame.n_rows
    if not 0 < holdout_sessions < n_rows:
        raise ValueError(f"holdout_sessions must be in 1..{n_rows - 1}, got {holdout_sessions}")
    embargo = embargo_sessions(samples, EMBARGO_CAP)
    holdout_start = n_rows - holdout_sessions
    train_end = holdout_start - embargo - 1
    index = training_index(dataset, train_end)
    if index.size == 0 or np.unique(samples.win[index]).size < 2:
        raise ValueError(f"no usable training samples before {session_date(dataset.frame, max(train_end, 0))}")
    model = fit_window(dataset, index, params)
    held = np.flatnonzero(samples.row >= holdout_start)
    holdout = metrics(samples.win[held], model.probability(dataset.features[held]))
    meta = {
        "strategy": strategy,
        "strategy_params": plain_params(strategy_params),
        "exit_rules": rules.as_dict(),
        "data_file": data_file,
        "train_start": session_date(dataset.frame, int(samples.row[index].min())).isoformat(),
        "train_end": session_date(dataset.frame, train_end).isoformat(),
        "embargo_days": embargo,
        "holdout_start": session_date(dataset.frame, holdout_start).isoformat(),
        "holdout_end": session_date(dataset.frame, n_rows - 1).isoformat(),
        "holdout_metrics": holdout,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return SavedModel(model=model, feature_names=FEATURE_NAMES, meta=meta)
