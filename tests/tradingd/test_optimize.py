"""`tradingd optimize`: the rolling windows, the search space's checks, bad input, and the proof that a trial is a
deterministic replay: the same `GridSampler` grid run in this process and in a process pool gives identical per-trial
results (and, in `make test-cluster`, on a local Ray instance: `test_optimize_cluster.py`).

The grid is small on purpose (4 trials over two parameters, one window of 40 + 20 sessions, 4 real symbols from a
data file cut from the bundled one), so `make test` pays a few seconds per replay, not minutes.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import lzma
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
from tradingd.optimize_trial import TrialResult

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
    windows = rolling_windows(sim_sessions(settings), 1, 40, 20)
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
    best = one_process.best
    assert best is not None
    assert out["best_params"] == best.params
    defined = [t.in_sample["sharpe"] for t in one_process.trials if t.in_sample["sharpe"] is not None]
    assert best.in_sample["sharpe"] == max(defined)
    assert isinstance(out["overfit_warning"], bool)
    json.dumps(out)  # plain values only


def test_the_cli_json_replays_the_same_trial(
    one_process: SearchResult, data_file: Path, cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIM_DATA_FILE", str(data_file))
    monkeypatch.setenv("SYMBOLS", ",".join(SYMBOLS))
    args = ["optimize", "--trials", "1", "--jobs", "1", "--windows", "1", "--train-days", "40", "--test-days", "20"]
    args += ["--param", "ZSCORE_ENTRY=-2:-2", "--param", "STOP_LOSS_PCT=0.05:0.05", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["best_params"] == {"ZSCORE_ENTRY": -2.0, "STOP_LOSS_PCT": 0.05}
    same = by_params(one_process)[(("STOP_LOSS_PCT", 0.05), ("ZSCORE_ENTRY", -2.0))]
    assert out["in_sample"] == same.in_sample
    assert out["out_of_sample"] == same.out_of_sample


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
