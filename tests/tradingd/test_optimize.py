"""`tradingd optimize`: the rolling windows, honest walk-forward selection (no window's parameters chosen with any
session of the test period they are judged on), the over-fitting rule, what a trial is never sent, the search space's
checks, bad input, and the proof that a trial is a deterministic replay: the same `GridSampler` grid run in this
process and in a process pool gives identical per-trial results (and, in `make test-cluster`, on a local Ray
instance: `test_optimize_cluster.py`).

The grid is small on purpose (4 trials over two parameters, two windows of 40 + 20 sessions, 4 real symbols from a
data file cut from the bundled one), so `make test` pays a few seconds per replay, not minutes.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import lzma
import random
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

from config.settings import Settings
from tests.conftest import DATA_FILE
from tradingd.cli import app
from tradingd.optimize import (
    NOT_SENT,
    OptimizeError,
    ParamRange,
    SearchResult,
    base_settings,
    check_space,
    in_process,
    parse_param,
    process_pool,
    rolling_windows,
    search,
    sim_sessions,
)
from tradingd.optimize_trial import METRICS, TrialResult, TrialSpec, Window, trial_settings

runner = CliRunner()
SYMBOLS = ("AAPL", "MSFT", "XOM", "JPM")
GRID_SPACE = (
    ParamRange("ZSCORE_ENTRY", "float", -2.0, -1.5, 0.5),
    ParamRange("STOP_LOSS_PCT", "float", 0.03, 0.05, 0.02),
)


def small_data_file(folder: Path) -> Path:
    """The bundled rows of `SYMBOLS` in 2016, as a plain CSV: parsed in a blink by every worker."""
    path = folder / "small.csv"
    if not path.exists():
        with lzma.open(DATA_FILE, "rt") as source:
            header = source.readline()
            rows = [line for line in source if line.startswith("2016-") and line.split(",", 2)[1] in SYMBOLS]
        path.write_text(header + "".join(rows))
    return path


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_data_file(tmp_path_factory.mktemp("optimize-data"))


def grid_inputs(data_file: Path, data_dir: Path) -> dict[str, Any]:
    settings = Settings(_env_file=None, data_dir=data_dir, sim_data_file=data_file, symbols=SYMBOLS)
    windows = rolling_windows(sim_sessions(settings), 2, 40, 20)
    return {"space": GRID_SPACE, "windows": windows, "base": base_settings(settings)}


def grid_sampler() -> optuna.samplers.GridSampler:
    return optuna.samplers.GridSampler({p.name: p.grid() for p in GRID_SPACE}, seed=0)


def by_params(result: SearchResult) -> dict[tuple[tuple[str, float], ...], TrialResult]:
    """Trials keyed by their parameters (which trial number got which grid point may differ between runs)."""
    return {tuple(sorted(t.params.items())): t for t in result.trials}


@pytest.fixture(scope="module")
def one_process(data_file: Path, tmp_path_factory: pytest.TempPathFactory) -> SearchResult:
    inputs = grid_inputs(data_file, tmp_path_factory.mktemp("var"))
    return search(**inputs, objective="sharpe", trials=4, submit=in_process, sampler=grid_sampler())


def test_the_grid_in_a_process_pool_gives_the_same_trials_as_in_one_process(
    one_process: SearchResult, data_file: Path, tmp_path: Path
) -> None:
    inputs = grid_inputs(data_file, tmp_path / "var")
    with process_pool(2) as submit:
        pooled = search(**inputs, objective="sharpe", trials=4, submit=submit, workers=2, sampler=grid_sampler())
    assert len(by_params(one_process)) == 4  # every grid point once
    for key, trial in by_params(one_process).items():
        other = by_params(pooled)[key]
        assert (other.in_sample, other.out_of_sample, other.windows) == (
            trial.in_sample,
            trial.out_of_sample,
            trial.windows,
        )
    assert all(t.error is None for t in one_process.trials)
    assert any(t.in_sample["trades"] for t in one_process.trials)  # the replays traded: not four empty runs


def test_the_result_follows_the_contract(one_process: SearchResult) -> None:
    out = one_process.as_json()
    assert {"objective", "best_params", "in_sample", "out_of_sample", "trials", "overfit_warning"} <= set(out)
    assert out["objective"] == "sharpe"
    assert {"params", "in_sample", "out_of_sample"} <= set(out["trials"][0])
    chosen = one_process.chosen
    assert chosen is not None
    assert len(chosen) == len(out["windows"]) == 2
    for index, (choice, listed) in enumerate(zip(chosen, out["windows"], strict=True)):
        defined = [t.windows[index]["in_sample"]["sharpe"] for t in one_process.trials if t.windows]
        assert choice.in_sample["sharpe"] == max(v for v in defined if v is not None)  # best on ITS train period
        assert listed["params"] == choice.params
        assert listed["out_of_sample"] == choice.out_of_sample
    assert out["best_params"] == chosen[-1].params  # the most recent window's choice
    for name in METRICS:  # the walk-forward figures: each window's choice's own replays, averaged
        for side in ("in_sample", "out_of_sample"):
            values = [getattr(c, side)[name] for c in chosen]
            defined = [v for v in values if v is not None]
            expected = pytest.approx(sum(defined) / 2) if len(defined) == 2 else None
            assert out[side][name] == expected
    assert isinstance(out["overfit_warning"], bool)
    json.dumps(out)  # plain values only


def scrambled_from(result: SearchResult, start: date, seed: int) -> SearchResult:
    """`result` with every figure of a replay that includes any session from `start` on replaced by noise: each
    test replay of a window whose test period reaches `start`, and each train replay whose period does."""
    noise = random.Random(seed)

    def scramble(figures: dict[str, Any], last: date) -> dict[str, Any]:
        return figures if last < start else {name: noise.uniform(-5, 5) for name in figures}

    trials = []
    for trial in result.trials:
        windows = tuple(
            {
                **figures,
                "in_sample": scramble(figures["in_sample"], window.train_end),
                "out_of_sample": scramble(figures["out_of_sample"], window.test_end),
            }
            for window, figures in zip(result.windows, trial.windows, strict=True)
        )
        trials.append(replace(trial, windows=windows))
    return replace(result, trials=tuple(trials))


def test_no_window_is_chosen_with_any_session_of_its_test_period(one_process: SearchResult) -> None:
    """On the real bars: the second window's train period holds the first one's test period (rolling windows), so
    choosing by figures over all windows would use test sessions; each window's choice must not move when every
    figure touching its test period or later is replaced by noise."""
    windows = one_process.windows
    assert windows[0].test_start <= windows[1].train_end  # the overlap the selection must not use
    chosen = one_process.chosen
    assert chosen is not None
    for index, window in enumerate(windows):
        assert window.train_end < window.test_start
        for seed in range(20):
            again = scrambled_from(one_process, window.test_start, seed).choose(index)
            assert again is not None
            assert again.trial == chosen[index].trial


def synthetic(objective: str, inside: float, outside: float) -> SearchResult:
    """One trial, one window, with `objective`'s metric at `inside` on train and `outside` on test."""
    metric = {"sharpe": "sharpe", "max_drawdown": "max_drawdown_pct"}[objective]
    train: dict[str, float | None] = {**dict.fromkeys(METRICS, 1.0), metric: inside}
    test: dict[str, float | None] = {**dict.fromkeys(METRICS, 1.0), metric: outside}
    window = Window(date(2016, 1, 4), date(2016, 3, 1), date(2016, 3, 2), date(2016, 4, 1))
    trial = TrialResult(0, {"ZSCORE_ENTRY": -2.0}, train, test, ({"in_sample": train, "out_of_sample": test},))
    return SearchResult(objective, GRID_SPACE, (window,), (trial,))


@pytest.mark.parametrize(
    ("objective", "inside", "outside", "warned"),
    [
        ("sharpe", 1.2, 0.4, True),  # out of sample below half
        ("sharpe", 1.2, 0.9, False),
        ("sharpe", -0.5, -2.0, False),  # nothing positive to fall from
        ("max_drawdown", 5.0, 12.0, True),  # drawdown out of sample more than twice the in-sample one
        ("max_drawdown", 5.0, 8.0, False),
        ("max_drawdown", 0.0, 3.0, True),
    ],
)
def test_the_overfit_warning_fires_for_maximised_and_minimised_objectives(
    objective: str, inside: float, outside: float, warned: bool
) -> None:
    result = synthetic(objective, inside, outside)
    assert result.overfit() is warned
    assert result.as_json()["overfit_warning"] is warned


def test_trials_run_without_ml_dashboard_notifications_or_any_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = Settings(
        _env_file=None,
        data_dir=tmp_path / "var",
        ml_enabled=True,
        allocation_method="ml",
        dashboard_enabled=True,
        dashboard_token="driver-token",
        alpaca_api_key="AKDRIVER",
        alpaca_secret_key="driver-secret",
    )
    secrets = {n for n, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)}
    assert {"dashboard_token", "alpaca_api_key", "alpaca_secret_key"} <= secrets <= NOT_SENT
    base = base_settings(driver)
    assert not secrets & set(base)
    assert "driver-token" not in repr(base)
    assert "driver-secret" not in repr(base)
    assert (base["ml_enabled"], base["dashboard_enabled"], base["allocation_method"]) == (False, False, "equal")
    # A worker whose environment has secrets does not read them either.
    monkeypatch.setenv("DASHBOARD_TOKEN", "worker-token")
    monkeypatch.setenv("ALPACA_API_KEY", "AKWORKER")
    replayed = trial_settings(TrialSpec(0, {"ZSCORE_ENTRY": -2.0}, base, ()), tmp_path / "trial")
    assert all(getattr(replayed, name) is None for name in secrets)
    assert not replayed.ml_enabled
    assert not replayed.dashboard_enabled


def test_the_cli_json_replays_the_same_trial(
    one_process: SearchResult, data_file: Path, cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIM_DATA_FILE", str(data_file))
    monkeypatch.setenv("SYMBOLS", ",".join(SYMBOLS))
    args = ["optimize", "--trials", "1", "--jobs", "1", "--windows", "2", "--train-days", "40", "--test-days", "20"]
    args += ["--param", "ZSCORE_ENTRY=-2:-2", "--param", "STOP_LOSS_PCT=0.05:0.05", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["best_params"] == {"ZSCORE_ENTRY": -2.0, "STOP_LOSS_PCT": 0.05}
    same = by_params(one_process)[(("STOP_LOSS_PCT", 0.05), ("ZSCORE_ENTRY", -2.0))]
    assert out["in_sample"] == same.in_sample  # the only trial: every window's choice
    assert out["out_of_sample"] == same.out_of_sample
    assert [w["trial"] for w in out["windows"]] == [0, 0]


def test_windows_roll_back_to_back_and_never_overlap() -> None:
    sessions = [date.fromordinal(date(2016, 1, 1).toordinal() + i) for i in range(100)]
    windows = rolling_windows(sessions, 3, 40, 20)
    assert windows[-1].test_end == sessions[-1]
    for window in windows:
        assert window.train_start < window.train_end < window.test_start <= window.test_end
        assert sessions.index(window.test_start) == sessions.index(window.train_end) + 1
        assert sessions.index(window.train_end) - sessions.index(window.train_start) + 1 == 40
    for earlier, later in itertools.pairwise(windows):
        assert sessions.index(later.test_start) == sessions.index(earlier.test_end) + 1
    with pytest.raises(OptimizeError, match="sessions"):
        rolling_windows(sessions, 4, 40, 20)


def test_params_parse_and_bad_ones_are_refused() -> None:
    assert parse_param("ZSCORE_WINDOW=10:20:5").grid() == [10, 15, 20]
    assert parse_param("stop_loss_pct=0.02:0.04:0.01").grid() == [0.02, 0.03, 0.04]
    for text, reason in [
        ("ZSCORE_ENTRY=-1:-3", "empty range"),
        ("NOPE=1:2", "not a setting"),
        ("STOP_MODE=1:2", "not a numeric setting"),
        ("ZSCORE_WINDOW=10:20:2.5", "integer"),
        ("ZSCORE_ENTRY", "expected NAME=LOW:HIGH"),
        ("ZSCORE_ENTRY=a:b", "must be numbers"),
    ]:
        with pytest.raises(OptimizeError, match=reason):
            parse_param(text)
    base = base_settings(Settings(_env_file=None))
    with pytest.raises(OptimizeError, match="ZSCORE_WINDOW=1: Input should be greater than or equal to 2"):
        check_space([parse_param("ZSCORE_WINDOW=1:5")], base)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--objective", "luck"], "error: --objective 'luck': choose one of sharpe"),
        (["--trials", "0"], "error: --trials 0: must be at least 1"),
        (["--jobs", "0"], "error: --jobs 0: must be at least 1"),
        (["--param", "ZSCORE_ENTRY=-1:-3"], "error: --param ZSCORE_ENTRY: empty range (-1 > -3)"),
        (["--windows", "9"], "error: --windows 9 × --test-days 126 + --train-days 252 = 1386 sessions"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli_env: None, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["optimize", *args])
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1


def test_ray_without_ray_installed_exits_2_saying_how_to_install_it(cli_env: None) -> None:
    if importlib.util.find_spec("ray") is not None:
        pytest.skip("ray is installed here (make test-cluster)")
    result = runner.invoke(app, ["optimize", "--ray", "auto"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --ray: ray is not installed")
    assert len(result.stderr.strip().splitlines()) == 1
