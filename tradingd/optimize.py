"""Walk-forward parameter search: optuna asks for parameter sets, each is replayed over rolling train/test windows
(`tradingd/optimize_trial.py`), and for each window the set with the best objective on that window's train sessions
is chosen and judged on its test sessions, which come strictly after them.

The search space is settings by name (the selected strategy's parameters, `agents/strategies` registry, and risk's),
each a range with a step (`ParamRange`); the objective is one of the report's statistics (`OBJECTIVES`). A trial is
one parameter set replayed once over every window (its per-window train and test figures). What is selected on what:

- Window k's choice (`SearchResult.chosen`) is the trial with the best objective on window k's train replay alone;
  its test figures are never read to choose, nor is any later window's train figure (a later train period holds
  earlier test periods).
- optuna (which parameters are tried next) is told each trial's objective on the FIRST window's train replay: those
  sessions come before every test period, so not even the set of trials tried has seen a test session.
- The reported out-of-sample figures are each metric's mean over the windows of each window's choice's test replay
  (the walk-forward result); the in-sample ones the same of their train replays; `best_params` are the most recent
  window's choice (what one would run next).

Trials run through a `Submit` (a trial spec in, a `concurrent.futures.Future` of its result out): in this process,
in a process pool (`process_pool`), or as Ray tasks (`tradingd/optimize_ray.py`). The loop asks optuna for as many
trials as there are workers, tells it each result as it arrives (ask/tell), and asks again. Every trial is a
deterministic replay, so its figures do not depend on where it ran; which parameters a model-based sampler (TPE) asks
next depends on the order results arrive in, so the sequence of trials is reproducible with one worker, or with any
number under a `GridSampler`.

Over-fitting rule (`overfit`), on the reported walk-forward figures: the out-of-sample objective is undefined; or, for
a maximised objective, below half the in-sample one while that is positive; or, for `max_drawdown` (minimised), an
out-of-sample drawdown more than twice the in-sample one.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import optuna
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from config.settings import Settings
from core.bars import load_daily_bars_cached
from core.errors import SetupError
from core.timeconv import ny_dates
from tradingd.local_state import BARS_CACHE_DIR, state_db_path
from tradingd.optimize_trial import (
    SECRET_SETTINGS,
    TrialResult,
    TrialSpec,
    Window,
    mean_metrics,
    run_trial,
    settings_error,
)

# --objective name -> the report metric maximised (`report --json` key; max_drawdown is minimised as its negative).
OBJECTIVES = {
    "sharpe": "sharpe",
    "sortino": "sortino",
    "calmar": "calmar",
    "total_return": "total_return_pct",
    "cagr": "cagr_pct",
    "profit_factor": "profit_factor",
    "max_drawdown": "max_drawdown_pct",
}
OVERFIT_RATIO = 0.5  # out of sample below half the in-sample objective: the warning
DRAWDOWN_OVERFIT_RATIO = 2.0  # for max_drawdown: an out-of-sample drawdown above twice the in-sample one
# Printed with every result: what out-of-sample cannot fix.
DATA_NOTE = (
    "The bundled bars are survivorship-biased (the S&P 500 members of Feb 2018) and span one mostly rising market "
    "(2013-2018): out-of-sample figures on them are optimistic too. Over many trials the best in-sample result is "
    "partly luck; judge it by its out-of-sample figures."
)
# Printed with every result: what was selected on what (the module's docstring).
SELECTION_NOTE = (
    "Each window's parameters are the trial with the best objective on that window's train sessions only, judged on "
    "its test sessions (strictly after); out_of_sample is the mean over windows of those test results, in_sample of "
    "their train results; best_params are the most recent window's choice. The sampler is guided by the first "
    "window's train sessions, which precede every test period."
)
# Settings a trial never takes from the driver: each replay has its own state, and no trial needs a secret (the
# broker's keys, DASHBOARD_TOKEN, notification URLs: every SecretStr setting).
NOT_SENT = frozenset({"data_dir", *SECRET_SETTINGS})
# What every trial replays with, whatever the driver's settings: sim, no scanner, errors-only logging; no ML (a model
# trained on later sessions would leak them into the replay, and loading it per replay is slow); no dashboard and no
# notifications (a replay serves and sends nothing).
TRIAL_OVERRIDES: dict[str, Any] = {
    "trading_mode": "sim",
    "use_scanner": False,
    "log_level": "ERROR",
    "ml_enabled": False,
    "dashboard_enabled": False,
    "notify_in_sim": False,
}

Submit = Callable[[TrialSpec], "Future[TrialResult]"]


class OptimizeError(ValueError):
    """Bad input to the search (unknown objective or parameter, an empty range, too few sessions); one line."""


@dataclass(frozen=True, slots=True)
class ParamRange:
    """One searched setting: values from `low` to `high` inclusive by `step`."""

    name: str  # the setting's variable name, upper case (ZSCORE_ENTRY)
    kind: Literal["int", "float"]
    low: float
    high: float
    step: float

    def distribution(self) -> BaseDistribution:
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), step=int(self.step))
        return FloatDistribution(self.low, self.high, step=self.step)

    def grid(self) -> list[int | float]:
        """Every value of the range (what a `GridSampler` walks)."""
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        values = [self.low + i * self.step for i in range(count)]
        return [int(v) for v in values] if self.kind == "int" else [round(v, 10) for v in values]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.kind, "low": self.low, "high": self.high, "step": self.step}


def _r(name: str, low: float, high: float, step: float, kind: Literal["int", "float"] = "float") -> ParamRange:
    return ParamRange(name, kind, low, high, step)


# The default space: the built-in strategies' parameters (their settings) and risk's. Ranges around the defaults, wide
# enough to matter, on steps coarse enough that nearby values are not told apart by noise.
RISK_SPACE = (
    _r("STOP_LOSS_PCT", 0.02, 0.10, 0.01),
    _r("MAX_POSITION_PCT", 0.05, 0.20, 0.05),
    _r("MAX_OPEN_POSITIONS", 5, 20, 5, "int"),
)
STRATEGY_SPACES: dict[str, tuple[ParamRange, ...]] = {
    "zscore_mean_reversion": (
        _r("ZSCORE_WINDOW", 10, 40, 5, "int"),
        _r("ZSCORE_ENTRY", -3.0, -1.0, 0.25),
        _r("ZSCORE_EXIT", -0.5, 0.5, 0.25),
    ),
    "rvol_breakout": (
        _r("BREAKOUT_HIGH_DAYS", 10, 60, 10, "int"),
        _r("BREAKOUT_MIN_RVOL", 1.0, 3.0, 0.25),
        _r("BREAKOUT_LOW_DAYS", 5, 20, 5, "int"),
    ),
}
_PARAM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([^:]+):([^:]+)(?::([^:]+))?\s*$")


def default_space(strategy: str) -> tuple[ParamRange, ...]:
    """The selected strategy's ranges (none for a plug-in: give them with --param) and risk's."""
    return (*STRATEGY_SPACES.get(strategy, ()), *RISK_SPACE)


def parse_param(text: str) -> ParamRange:
    """`NAME=LOW:HIGH[:STEP]` for a numeric setting; the step defaults to 1 for an integer setting, and to a tenth
    of the range for a float one."""
    match = _PARAM.match(text)
    if match is None:
        raise OptimizeError(f"--param {text!r}: expected NAME=LOW:HIGH[:STEP], e.g. ZSCORE_ENTRY=-3:-1:0.25")
    name, *numbers = match.groups()
    field = Settings.model_fields.get(name.lower())
    if field is None:
        raise OptimizeError(f"--param {name}: not a setting (tradingd strategies lists the strategies' settings)")
    annotation = field.annotation
    if annotation is int:
        kind: Literal["int", "float"] = "int"
    elif annotation is float or "Decimal" in str(annotation) or "Fraction" in str(annotation):
        kind = "float"
    else:
        raise OptimizeError(f"--param {name}: not a numeric setting")
    try:
        low, high = float(numbers[0]), float(numbers[1])
        step = float(numbers[2]) if numbers[2] is not None else (1.0 if kind == "int" else (high - low) / 10)
    except ValueError:
        raise OptimizeError(f"--param {text!r}: LOW, HIGH and STEP must be numbers") from None
    if not all(math.isfinite(v) for v in (low, high, step)):
        raise OptimizeError(f"--param {name}: LOW, HIGH and STEP must be finite")
    if low > high:
        raise OptimizeError(f"--param {name}: empty range ({numbers[0]} > {numbers[1]})")
    if kind == "int" and not all(v == int(v) for v in (low, high, step)):
        raise OptimizeError(f"--param {name}: an integer setting takes integer LOW, HIGH and STEP")
    if step <= 0 and low < high:
        raise OptimizeError(f"--param {name}: STEP must be above 0")
    return ParamRange(name.upper(), kind, low, high, step if step > 0 else 1.0)


def check_space(space: Sequence[ParamRange], base: dict[str, Any]) -> None:
    """Each range's ends must be settings the daemon accepts (with the others at the driver's values): a bad end
    is an `OptimizeError` now, not a failed trial later."""
    if not space:
        raise OptimizeError("nothing to search: give at least one --param")
    names = [p.name for p in space]
    if len(set(names)) != len(names):
        raise OptimizeError(f"--param: a setting is given twice ({', '.join(sorted(names))})")
    for param in space:
        for value in (param.low, param.high):
            try:
                Settings(_env_file=None, **{**base, param.name.lower(): value})
            except ValueError as error:
                raise OptimizeError(f"--param {param.name}={value:g}: {settings_error(error)}") from None


def base_settings(settings: Settings) -> dict[str, Any]:
    """The driver's settings as the values each trial starts from: no secret, and `TRIAL_OVERRIDES` (those the
    settings have)."""
    values = settings.model_dump(exclude=set(NOT_SENT))
    values.update({name: value for name, value in TRIAL_OVERRIDES.items() if name in Settings.model_fields})
    if values.get("allocation_method") == "ml":  # the model's weights: needs the ML that trials run without
        values["allocation_method"] = "equal"
    return values


def sim_sessions(settings: Settings) -> list[date]:
    """The sessions of SIM_DATA_FILE within SIM_START..SIM_END (its parsed copy cached as a replay's is)."""
    try:
        history = load_daily_bars_cached(settings.sim_data_file, state_db_path(settings).parent / BARS_CACHE_DIR)
    except (OSError, ValueError, SetupError) as error:
        raise OptimizeError(f"SIM_DATA_FILE {settings.sim_data_file}: {error}") from None
    days: list[date] = [d.item() for d in ny_dates(history.timestamps_ns).astype("datetime64[D]")]
    first, last = settings.sim_start or days[0], settings.sim_end or days[-1]
    return [d for d in days if first <= d <= last]


def rolling_windows(sessions: Sequence[date], count: int, train: int, test: int) -> tuple[Window, ...]:
    """`count` windows of `train` sessions followed by `test` sessions, each one `test` sessions after the last,
    the last test ending on the last session: together the test periods are the most recent `count × test` sessions,
    back to back. A window's train period may hold earlier windows' test periods (it is the `train` sessions just
    before its own test): which is why each window's parameters are chosen on its own train period only."""
    if count < 1 or train < 1 or test < 1:
        raise OptimizeError("--windows, --train-days and --test-days must be at least 1")
    needed = train + count * test
    if needed > len(sessions):
        raise OptimizeError(
            f"--windows {count} × --test-days {test} + --train-days {train} = {needed} sessions, "
            f"but the data has {len(sessions)} ({sessions[0]} to {sessions[-1]})"
        )
    windows = []
    for k in range(count):
        test_end = len(sessions) - 1 - test * (count - 1 - k)
        test_start = test_end - test + 1
        train_start = test_start - train
        windows.append(
            Window(sessions[train_start], sessions[test_start - 1], sessions[test_start], sessions[test_end])
        )
    return tuple(windows)


@dataclass(frozen=True, slots=True)
class WindowChoice:
    """One window's walk-forward step: the trial chosen on its train replay, and that trial's figures there and on
    its test replay."""

    window: Window
    trial: int  # the chosen trial's number
    params: dict[str, int | float]
    in_sample: dict[str, float | None]  # the chosen trial's train replay of this window
    out_of_sample: dict[str, float | None]  # its test replay of this window

    def as_json(self) -> dict[str, Any]:
        return {
            **self.window.as_json(),
            "trial": self.trial,
            "params": self.params,
            "in_sample": self.in_sample,
            "out_of_sample": self.out_of_sample,
        }


@dataclass(frozen=True, slots=True)
class SearchResult:
    objective: str
    space: tuple[ParamRange, ...]
    windows: tuple[Window, ...]
    trials: tuple[TrialResult, ...]  # by trial number

    @property
    def metric(self) -> str:
        return OBJECTIVES[self.objective]

    def value(self, metrics: dict[str, float | None]) -> float | None:
        """The objective of a result's metrics, as maximised (the negative of a drawdown)."""
        raw = metrics.get(self.metric)
        if raw is None:
            return None
        return -raw if self.objective == "max_drawdown" else raw

    def train_value(self, trial: TrialResult, index: int) -> float | None:
        """The trial's objective on window `index`'s train replay only (None: undefined, or the trial did not run)."""
        if index >= len(trial.windows):
            return None
        return self.value(trial.windows[index]["in_sample"])

    def choose(self, index: int) -> WindowChoice | None:
        """Window `index`'s choice: the trial with the highest objective on that window's train replay (the lowest
        number among equals); None if no trial has it defined. Reads nothing else: no test figure, no other window."""
        scored = [(v, -t.number, t) for t in self.trials if (v := self.train_value(t, index)) is not None]
        if not scored:
            return None
        best = max(scored, key=lambda item: (item[0], item[1]))[2]
        figures = best.windows[index]
        return WindowChoice(
            self.windows[index], best.number, best.params, figures["in_sample"], figures["out_of_sample"]
        )

    @property
    def chosen(self) -> tuple[WindowChoice, ...] | None:
        """Every window's choice, oldest first; None when some window has none (no walk-forward result)."""
        choices = [self.choose(index) for index in range(len(self.windows))]
        return None if any(c is None for c in choices) else tuple(c for c in choices if c is not None)

    @property
    def best_params(self) -> dict[str, int | float] | None:
        """The most recent window's choice: the parameters one would run next."""
        chosen = self.chosen
        return None if not chosen else chosen[-1].params

    @property
    def in_sample(self) -> dict[str, float | None] | None:
        """Each metric's mean over the windows of the chosen trial's train replay."""
        chosen = self.chosen
        return None if not chosen else mean_metrics([c.in_sample for c in chosen])

    @property
    def out_of_sample(self) -> dict[str, float | None] | None:
        """Each metric's mean over the windows of the chosen trial's test replay: the walk-forward result."""
        chosen = self.chosen
        return None if not chosen else mean_metrics([c.out_of_sample for c in chosen])

    def overfit(self) -> bool:
        """The module's over-fitting rule on the reported figures (False when nothing was chosen)."""
        inside, outside = self.in_sample, self.out_of_sample
        if inside is None or outside is None:
            return False
        raw_in, raw_out = inside[self.metric], outside[self.metric]
        if raw_in is None:
            return False
        if raw_out is None:
            return True
        if self.objective == "max_drawdown":  # minimised: compare the drawdowns themselves (both >= 0)
            return raw_out > DRAWDOWN_OVERFIT_RATIO * raw_in
        return raw_in > 0 and raw_out < OVERFIT_RATIO * raw_in

    def overfit_rule(self) -> str:
        if self.objective == "max_drawdown":
            return f"out-of-sample max_drawdown undefined or above {DRAWDOWN_OVERFIT_RATIO:g} × in-sample"
        return f"out-of-sample {self.objective} undefined or below {OVERFIT_RATIO:g} × in-sample (when positive)"

    def as_json(self) -> dict[str, Any]:
        """`tradingd optimize --json` (the issue's contract, plus the space, each window's choice and each trial's
        windows)."""
        choices = [self.choose(index) for index in range(len(self.windows))]
        return {
            "objective": self.objective,
            "best_params": self.best_params,
            "in_sample": self.in_sample,
            "out_of_sample": self.out_of_sample,
            "trials": [
                {
                    "number": t.number,
                    "params": t.params,
                    "in_sample": t.in_sample,
                    "out_of_sample": t.out_of_sample,
                    "windows": list(t.windows),
                    "error": t.error,
                }
                for t in self.trials
            ],
            "overfit_warning": self.overfit(),
            "overfit_rule": self.overfit_rule(),
            "selection": SELECTION_NOTE,
            "note": DATA_NOTE,
            "space": [p.as_json() for p in self.space],
            "windows": [
                {**w.as_json(), "trial": None, "params": None, "in_sample": None, "out_of_sample": None}
                if c is None
                else c.as_json()
                for w, c in zip(self.windows, choices, strict=True)
            ],
        }


def search(
    space: Sequence[ParamRange],
    windows: Sequence[Window],
    base: dict[str, Any],
    *,
    objective: str,
    trials: int,
    submit: Submit,
    workers: int = 1,
    sampler: optuna.samplers.BaseSampler | None = None,
    on_result: Callable[[TrialResult], None] | None = None,
) -> SearchResult:
    """Run `trials` trials (ask/tell), at most `workers` at a time through `submit`; optuna maximises the objective
    on the first window's train replay, which precedes every test period (a trial whose objective is undefined there
    is told as failed)."""
    if objective not in OBJECTIVES:
        raise OptimizeError(f"--objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
    if trials < 1:
        raise OptimizeError(f"--trials {trials}: must be at least 1")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=sampler or optuna.samplers.TPESampler(seed=0))
    distributions = {p.name: p.distribution() for p in space}
    shell = SearchResult(objective, tuple(space), tuple(windows), ())
    pending: dict[Future[TrialResult], optuna.trial.Trial] = {}
    results: list[TrialResult] = []
    asked = 0
    while asked < trials or pending:
        while asked < trials and len(pending) < max(workers, 1):
            trial = study.ask(distributions)
            params = {name: _plain(value) for name, value in trial.params.items()}
            pending[submit(TrialSpec(trial.number, params, base, tuple(windows)))] = trial
            asked += 1
        done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for future in sorted(done, key=lambda f: pending[f].number):
            trial = pending.pop(future)
            result = future.result()
            _tell(study, trial, shell.train_value(result, 0))
            results.append(result)
            if on_result is not None:
                on_result(result)
    return SearchResult(objective, tuple(space), tuple(windows), tuple(sorted(results, key=lambda r: r.number)))


def _tell(study: optuna.Study, trial: optuna.trial.Trial, value: float | None) -> None:
    """Tell optuna a result (undefined: failed). A `GridSampler` stops the study when its grid is done, which
    optuna allows only inside `Study.optimize` and raises about here, after storing the result: that is the end the
    loop reaches anyway, so it is let pass."""
    try:
        if value is None:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, value)
    except RuntimeError as error:
        if "Study.stop" not in str(error):
            raise


def _plain(value: Any) -> int | float:
    """A value optuna suggested, as the setting takes it (a float's binary noise from the step rounded off)."""
    return value if isinstance(value, int) else round(float(value), 10)


def in_process(spec: TrialSpec) -> Future[TrialResult]:
    """Run the trial now, in this process; its future is already done."""
    future: Future[TrialResult] = Future()
    try:
        future.set_result(run_trial(spec))
    except Exception as error:  # handed over as the future's, as a pool's worker would
        future.set_exception(error)
    return future


@contextlib.contextmanager
def process_pool(workers: int) -> Iterator[Submit]:
    """`workers` processes on this machine, started with `spawn` (a clean interpreter each, no forked threads)."""
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield lambda spec: pool.submit(run_trial, spec)
