"""One optimisation trial: the sim replays of a parameter set over each walk-forward window, and their statistics.

`run_trial` is a plain top-level function of plain values (a `TrialSpec` in, a `TrialResult` out), so the same function
runs in the calling process, in a process pool and as a Ray task: every trial is a deterministic replay of the bundled
bars (`tradingd.app.build_sim`, then `Orchestrator.run`) from a fresh state, so its figures are the same wherever
it runs. Each process replays in one temporary DATA_DIR of its own, deleted when the process exits: every replay
starts by deleting the previous one's state (`build_sim`'s `reset_sim_state`), and the parsed bundled bars cached
there (`bars-cache/`) are parsed once per process instead of once per replay (~4 s each). The settings travel as a
dict of their values (the driver's resolved settings plus the trial's parameters), never read from the worker's
environment: a Ray worker on another machine replays exactly what the driver asked. The secrets (every `SecretStr`
setting: the broker's keys, DASHBOARD_TOKEN, notification URLs) are never sent, and a replay sets them to nothing
rather than read them from the worker's environment: no trial needs one.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, get_args

import numpy as np
from pydantic import SecretStr

from analytics.build import store_ledger
from analytics.returns import return_stats
from analytics.trades import trade_stats
from config.settings import Settings
from core.errors import SetupError
from core.logging import configure_logging
from core.store import StateStore

# The report's statistics a trial records for each replay (`report --json` keys, same definitions).
METRICS = (
    "total_return_pct",
    "cagr_pct",
    "volatility_pct",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown_pct",
    "trades",
    "win_rate_pct",
    "profit_factor",
)


# Every secret setting (SecretStr): never sent with a trial, and None in its replays (not read from a worker's
# environment either). Computed from the settings, so a secret added later is covered without a change here.
SECRET_SETTINGS = frozenset(
    name
    for name, field in Settings.model_fields.items()
    if SecretStr in (field.annotation, *get_args(field.annotation))
)


# This process's replay DATA_DIR (see the module's docstring); TemporaryDirectory removes it at interpreter exit.
_worker_dir: tempfile.TemporaryDirectory[str] | None = None
_worker_lock = threading.Lock()


def _worker_data_dir() -> Path:
    global _worker_dir  # noqa: PLW0603 - one per process, by design
    with _worker_lock:
        if _worker_dir is None:
            _worker_dir = tempfile.TemporaryDirectory(prefix="tradingd-optimize-")
        return Path(_worker_dir.name)


@dataclass(frozen=True, slots=True)
class Window:
    """One walk-forward window: parameters are chosen on its `train` sessions (in sample) and judged on its `test`
    sessions (out of sample), which come strictly after them."""

    train_start: date
    train_end: date
    test_start: date
    test_end: date

    def as_json(self) -> dict[str, str]:
        return {
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "test_start": self.test_start.isoformat(),
            "test_end": self.test_end.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class TrialSpec:
    number: int
    params: dict[str, int | float]  # setting name (upper case) -> value
    base: dict[str, Any]  # every other setting, by field name, as the driver resolved it
    windows: tuple[Window, ...]


@dataclass(frozen=True, slots=True)
class TrialResult:
    number: int
    params: dict[str, int | float]
    in_sample: dict[str, float | None]  # each metric's mean over the train periods (None if undefined in any)
    out_of_sample: dict[str, float | None]  # the same over the test periods
    windows: tuple[dict[str, Any], ...]  # per window, in order: its dates, "in_sample" and "out_of_sample" metrics
    error: str | None = None  # why the trial could not run (settings the daemon refuses together), or None


def settings_error(error: ValueError) -> str:
    """One line from a settings validation error: pydantic's first message, without its link."""
    errors = getattr(error, "errors", None)
    if callable(errors):
        found = errors()
        if found:
            return str(found[0].get("msg", error))
    return str(error).splitlines()[0]


def trial_settings(spec: TrialSpec, data_dir: Path) -> Settings:
    """The settings of one replay of the trial: the driver's, the trial's parameters, a DATA_DIR of its own, and no
    secret (set to None, so not taken from this process's environment)."""
    values = {
        **spec.base,
        **{name.lower(): value for name, value in spec.params.items()},
        **dict.fromkeys(SECRET_SETTINGS),
        "data_dir": data_dir,
    }
    return Settings(_env_file=None, **values)


def replay_metrics(settings: Settings, start: date, end: date) -> dict[str, float | None]:
    """Replay [start, end] (inclusive) with `settings` and return the report's statistics of that replay."""
    from tradingd.app import build_sim, run_app  # noqa: PLC0415 - the wiring is only needed when a trial runs

    app = build_sim(settings, start=start, end=end)
    try:
        asyncio.run(run_app(app))
        return _metrics(app.store)
    finally:
        app.close()


def _metrics(store: StateStore) -> dict[str, float | None]:
    marks = store.equity_marks(None, None)
    equity = np.array([float(marks[0].start_equity), *(float(m.last_equity) for m in marks)])
    returns = return_stats(equity)
    trades = trade_stats(store_ledger(store).trips)
    values: dict[str, float | None] = {
        "total_return_pct": returns.total_return_pct,
        "cagr_pct": returns.cagr_pct,
        "volatility_pct": returns.volatility_pct,
        "sharpe": returns.sharpe,
        "sortino": returns.sortino,
        "calmar": returns.calmar,
        "max_drawdown_pct": returns.max_drawdown_pct,
        "trades": float(trades.trades),
        "win_rate_pct": trades.win_rate_pct,
        "profit_factor": trades.profit_factor,
    }
    return values


def mean_metrics(runs: list[dict[str, float | None]]) -> dict[str, float | None]:
    """Each metric's mean over the windows; None when it is undefined in any window (never averaged over a subset)."""
    out: dict[str, float | None] = {}
    for name in METRICS:
        values = [run[name] for run in runs]
        out[name] = (
            None
            if not values or any(v is None for v in values)
            else statistics.fmean(v for v in values if v is not None)
        )
    return out


def run_trial(spec: TrialSpec) -> TrialResult:
    """Every window's train and test replay of `spec.params`; deterministic, so the same wherever it runs."""
    configure_logging("json", "ERROR")  # a worker's replays log nothing below errors, and no file
    per_window: list[dict[str, Any]] = []
    train_runs, test_runs = [], []
    try:
        settings = trial_settings(spec, _worker_data_dir())
    except ValueError as error:  # e.g. ZSCORE_ENTRY below what this trial's ZSCORE_WINDOW can produce
        undefined = mean_metrics([])
        reason = settings_error(error)
        return TrialResult(spec.number, dict(spec.params), undefined, undefined, (), error=reason)
    for window in spec.windows:
        try:
            train = replay_metrics(settings, window.train_start, window.train_end)
            test = replay_metrics(settings, window.test_start, window.test_end)
        except SetupError as error:  # a setting under which no order is possible (check_sim_setup)
            undefined = mean_metrics([])
            return TrialResult(spec.number, dict(spec.params), undefined, undefined, (), error=str(error))
        train_runs.append(train)
        test_runs.append(test)
        per_window.append({**window.as_json(), "in_sample": train, "out_of_sample": test})
    return TrialResult(
        number=spec.number,
        params=dict(spec.params),
        in_sample=mean_metrics(train_runs),
        out_of_sample=mean_metrics(test_runs),
        windows=tuple(per_window),
    )
