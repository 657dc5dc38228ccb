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


# ---- the console, the log file, status tables ----------------------------------------------------------------------

WARMUP = ("--start", "2013-02-08", "--end", "2013-04-30")  # 56 sessions, the first 20 without volume history
STATUS_KEYS = {
    "path", "schema_version", "orders", "fills", "positions", "last_equity_mark", "peak_equity", "journal", "flags",
    "focus_scores", "exposure", "herfindahl", "effective_positions", "mode", "db",
}  # fmt: skip


def _log_events(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "var" / "sim" / "logs" / "tradingd.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_piped_replay_is_short_plain_text_and_the_log_file_has_everything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    monkeypatch.setenv("LOG_FORMAT", "auto")
    result = runner.invoke(app, ["replay", *WARMUP])
    assert result.exit_code == 0, result.output
    err, out = result.stderr, result.stdout
    assert "\x1b" not in err + out  # not a terminal: no colours, no cursor movement
    progress = [line for line in err.splitlines() if line.startswith("replay ") and "% (" in line]
    assert 1 <= len(progress) <= 12
    assert progress[-1].startswith("replay 100% (56/56 sessions, 2013-04-30) equity ")
    assert len(err.splitlines()) < 100
    # The warm-up (no candidates file, no 20-day volumes yet) is not a warning; per-iteration lines stay in the file.
    for quiet in ("focus_fallback", "daily_scan_skipped", "iteration", "order_submitted", "FILL"):
        assert quiet not in err
    assert "run summary" in out
    assert "fills" in out
    events = _log_events(tmp_path)
    names = [e["event"] for e in events]
    assert names.count("iteration") == 56
    fills = [e for e in events if e["event"] == "order_filled"]
    assert fills
    assert {"symbol", "side", "qty", "price", "client_order_id"} <= set(fills[0])
    warmup = [e for e in events if e["event"] in ("focus_fallback", "daily_scan_skipped")]
    assert warmup
    assert {e["level"] for e in warmup} == {"info"}


def test_replay_json_stdout_is_one_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    result = runner.invoke(app, ["replay", *WARMUP, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # the whole of stdout: progress and logs are on stderr
    assert summary["iterations"] == 56
    assert summary["log_file"].endswith("tradingd.log")


def test_a_sim_reset_keeps_the_logs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    assert runner.invoke(app, ["run", "--iterations", "3"]).exit_code == 0
    assert runner.invoke(app, ["run", "--iterations", "2"]).exit_code == 0
    events = _log_events(tmp_path)
    assert [e["event"] for e in events].count("daemon_starting") == 2
    assert [e["iteration"] for e in events if e["event"] == "iteration"] == [1, 2, 3, 1, 2]


def test_status_prints_tables_not_reprs() -> None:
    assert runner.invoke(app, ["replay", "--start", "2016-01-04", "--end", "2016-03-31"]).exit_code == 0
    assert runner.invoke(app, ["halt", "--reason", "lunch"]).exit_code == 0
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for header in ("account (sim)", "positions (", "unrealised P&L", "open orders (", "kill switch", "ON (lunch)",
                   "drawdown breaker", "herfindahl", "focus scores", "last daily scan"):  # fmt: skip
        assert header in out, header
    assert "{" not in out
    assert "Decimal(" not in out
    assert "\x1b" not in out
    held = json.loads(runner.invoke(app, ["status", "--json"]).stdout)["exposure"]["symbols"]
    assert all(symbol in out for symbol in held)


def test_status_json_keys_are_unchanged() -> None:
    assert runner.invoke(app, ["run", "--iterations", "5"]).exit_code == 0
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0
    assert set(json.loads(result.stdout)) == STATUS_KEYS


def test_status_before_any_run_says_so() -> None:
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "no equity mark yet" in result.stdout
