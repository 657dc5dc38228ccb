import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    monkeypatch.setenv("LOG_FORMAT", "json")
    for name in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "TRADING_MODE"):
        monkeypatch.delenv(name, raising=False)


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "replay", "status", "halt", "resume"):
        assert command in result.output


def test_run_sim_iterations_json_summary() -> None:
    result = runner.invoke(app, ["run", "--mode", "sim", "--iterations", "60", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["iterations"] == 60
    assert 0 < summary["bars"] <= 60 * 29
    for key in ("signals", "orders", "fills", "final_equity", "return_pct", "max_drawdown_pct", "denied", "rejected",
                "elapsed_s", "bars_per_s"):  # fmt: skip
        assert key in summary


def test_replay_writes_every_fill_to_csv(tmp_path: Path) -> None:
    out = tmp_path / "trades.csv"
    result = runner.invoke(
        app, ["replay", "--start", "2016-01-04", "--end", "2016-06-30", "--trades-csv", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    lines = out.read_text().splitlines()
    assert lines[0] == "ts,symbol,side,qty,price,client_order_id"
    assert len(lines) - 1 == summary["fills"] > 0


def test_status_after_a_run_and_kill_switch_survives() -> None:
    assert runner.invoke(app, ["run", "--iterations", "30"]).exit_code == 0
    assert runner.invoke(app, ["halt", "--reason", "test"]).exit_code == 0
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert status["flags"]["halted"] == "test"
    assert status["mode"] == "sim"
    assert set(status["exposure"]["tiers"]) == {"TIER1", "TIER2", "TIER3"}
    assert "herfindahl" in status
    assert "effective_positions" in status
    # A new sim run keeps the kill switch: every entry is denied as halted.
    result = runner.invoke(app, ["run", "--iterations", "80", "--json"])
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["orders"] == 0
    assert summary["orders_approved"] == 0
    assert summary["denied"]["halted"] > 0
    assert runner.invoke(app, ["resume"]).exit_code == 0
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert "halted" not in status["flags"]


@pytest.mark.parametrize(
    ("env", "needle"),
    [({"TIER1_ALLOCATION": "abc"}, "TIER1_ALLOCATION"), ({"TRADING_MODE": "live"}, "ALPACA_API_KEY")],
)
def test_bad_config_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], needle: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    result = runner.invoke(app, ["run", "--iterations", "1"])
    assert result.exit_code == 2
    assert needle in result.stderr


def test_bad_replay_dates_exit_2() -> None:
    result = runner.invoke(app, ["replay", "--start", "2016-13-01"])
    assert result.exit_code == 2
