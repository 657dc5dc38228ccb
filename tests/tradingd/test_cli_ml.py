"""`tradingd ml train | evaluate | show` and `replay --ml`, on the seven real symbols of `small_history` (a CSV of
their bars as SIM_DATA_FILE), with a forest of 10 trees: behaviour, not skill."""

from __future__ import annotations

import json
import socket
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from structlog.testing import capture_logs
from typer.testing import CliRunner

from core.timeconv import ny_dates
from core.types import BarFrame, TradingMode
from tradingd.app import build_sim
from tradingd.cli import app
from tradingd.cli_common import load_cli_settings
from tradingd.cli_daemon import _start_dashboard

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("cli_env")
FOLD_KEYS = {
    "train_start", "train_end", "test_start", "test_end", "embargo_days", "n_train", "n_test", "base_rate", "auc",
    "brier", "log_loss",
}  # fmt: skip


@pytest.fixture
def small_data(small_history: BarFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    days = ny_dates(small_history.timestamps).astype(str)
    lines = ["date,symbol,open,high,low,close,volume"]
    for col, symbol in enumerate(small_history.symbols):
        for row in np.flatnonzero(np.isfinite(small_history.close[:, col])):
            values = (small_history.open, small_history.high, small_history.low, small_history.close)
            prices = ",".join("" if np.isnan(v[row, col]) else repr(float(v[row, col])) for v in values)
            lines.append(f"{days[row]},{symbol},{prices},{int(small_history.volume[row, col])}")
    path = tmp_path / "small.csv"
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("SIM_DATA_FILE", str(path))
    return path


def test_show_without_a_model_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ml", "show"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: ML_MODEL_PATH: {tmp_path / 'var' / 'models' / 'win_probability.skops'}: no model file "
        "(train one with `tradingd ml train`)\n"
    )


def test_replay_ml_without_a_model_is_one_line_and_exit_2() -> None:
    result = runner.invoke(app, ["replay", "--ml"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ML_MODEL_PATH: ")
    assert result.stderr.count("\n") == 1


def test_allocation_ml_needs_ml_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOCATION_METHOD", "ml")
    result = runner.invoke(app, ["replay"])
    assert result.exit_code == 2
    assert "ALLOCATION_METHOD=ml: needs ML_ENABLED=true" in result.stderr
    assert result.stderr.count("\n") == 1


def test_trailing_stops_are_refused_by_train(small_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOP_MODE", "trailing")
    result = runner.invoke(app, ["ml", "train"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: STOP_MODE=trailing: ")
    assert result.stderr.count("\n") == 1


def test_train_show_evaluate_and_a_replay_with_the_model(small_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trained = runner.invoke(app, ["ml", "train", "--trees", "10", "--json"])
    assert trained.exit_code == 0, trained.stderr
    model = json.loads(trained.stdout)
    assert model["train_end"] < model["holdout_start"]
    assert model["n_train"] > 100
    assert Path(model["path"]).suffix == ".skops"
    shown = json.loads(runner.invoke(app, ["ml", "show", "--json"]).stdout)
    assert shown["features"] == model["features"]
    assert shown["holdout_metrics"] == model["holdout_metrics"]

    evaluated = runner.invoke(app, ["ml", "evaluate", "--trees", "10", "--json"])
    assert evaluated.exit_code == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert result["folds"]
    assert all(fold.keys() >= FOLD_KEYS for fold in result["folds"])
    assert {"overall", "control", "baseline"} <= result.keys()
    table = runner.invoke(app, ["ml", "evaluate", "--trees", "10"])
    assert "control" in table.stdout
    assert "calibration" in table.stdout

    # A threshold no probability reaches: every entry the model is asked about is denied ml_low_probability.
    monkeypatch.setenv("ML_MIN_WIN_PROB", "1")
    replay = runner.invoke(app, ["replay", "--ml", "--start", model["holdout_start"], "--json"])
    assert replay.exit_code == 0, replay.stderr
    summary = json.loads(replay.stdout)
    assert summary["denied"].get("ml_low_probability", 0) > 0
    assert summary["fills"] == 0

    # The dashboard beside a daemon with ML_ENABLED shows the very model the risk agent asks, on a session's bar.
    monkeypatch.setenv("ML_MIN_WIN_PROB", "0.5")
    offered: dict[str, Any] = {}

    def capture(*_args: Any, **kwargs: Any) -> None:
        offered.update(kwargs)

    monkeypatch.setattr("tradingd.web.server.start_dashboard", capture)
    settings = load_cli_settings(trading_mode=TradingMode.SIM, ml_enabled=True, dashboard_enabled=True)
    daemon = build_sim(settings, start=date.fromisoformat(model["holdout_start"]))
    try:
        _start_dashboard(daemon)
        gate = daemon.orchestrator.risk.ml_gate
        assert gate is not None
        assert offered["predictor"] is gate.predictor
        symbols = list(daemon.symbols)
        answers = offered["predictor"].predict_as_of(symbols, date.fromisoformat(model["holdout_start"]))
    finally:
        daemon.close()
    assert answers
    assert set(answers) <= set(symbols)
    assert all(0 <= p.win_probability <= 1 for p in answers.values())

    # A replay that starts inside the model's own training period is said to be in sample (not refused).
    with capture_logs() as logs:
        build_sim(settings).close()
    warned = [entry for entry in logs if entry["event"] == "ml_in_sample"]
    assert len(warned) == 1
    assert warned[0]["holdout_start"] == model["holdout_start"]


@pytest.fixture
def paper_keys_no_network(cli_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paper settings that pass `load_settings`; any connection fails the test (a refusal comes before the broker)."""

    def no_network(*_: object, **__: object) -> None:
        raise AssertionError("a refused daemon must not open a connection")

    monkeypatch.setenv("ALPACA_API_KEY", "k")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "s")
    monkeypatch.setenv("ML_ENABLED", "true")
    monkeypatch.setattr(socket.socket, "connect", no_network)


@pytest.mark.usefixtures("paper_keys_no_network")
def test_paper_ml_without_a_model_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--mode", "paper", "--once"])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: ML_MODEL_PATH: {tmp_path / 'var' / 'models' / 'win_probability.skops'}: no model file "
        "(train one with `tradingd ml train`)\n"
    )


@pytest.mark.usefixtures("paper_keys_no_network")
def test_paper_ml_with_intraday_bars_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAR_TIMEFRAME", "15Min")
    result = runner.invoke(app, ["run", "--mode", "paper", "--once"])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "error: BAR_TIMEFRAME=15Min: ML_ENABLED=true needs 1Day (the model's features are daily bars)\n"
    )
