import json
import os
import socket
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.close_requests import ALL, CloseRequests
from core.flags import FLAG_DRAWDOWN, FLAG_DRAWDOWN_PEAK
from core.store import StateStore
from tradingd import __version__
from tradingd.cli import app, main

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("cli_env")


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "replay", "status", "halt", "resume", "orders", "fills", "restore"):
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
    "focus_scores", "exposure", "herfindahl", "effective_positions", "mode", "db", "trading_state", "close_requests",
    "portfolio",
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
    assert "warning" not in err.lower()  # nothing is wrong in a plain replay: not even the `active` trading state
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
                   "drawdown breaker", "herfindahl", "portfolio volatility", "diversification ratio", "focus scores",
                   "last daily scan"):  # fmt: skip
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


# ---- conventions: --version, python -m tradingd, flags and dates in --help ----------------------------------------


def _subprocess_env(tmp_path: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "TRADING_MODE", "SIM_", "SYMBOLS"))}
    return {**keep, "DATA_DIR": str(tmp_path / "var"), "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}


def test_version_prints_the_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"tradingd {__version__}"
    assert __version__ != "0+unknown"  # read from the installed package's metadata


def test_python_m_tradingd_is_the_same_cli(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tradingd", "--help"],
        cwd=tmp_path,
        env=_subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: tradingd" in result.stdout
    for command in ("run", "replay", "status", "halt", "resume", "scan", "--version"):
        assert command in result.stdout


def test_a_run_from_another_directory_finds_the_bundled_data(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "tradingd", "run", "--iterations", "3", "--json"],
        cwd=elsewhere,
        env={**_subprocess_env(tmp_path), "USE_SCANNER": "false"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["iterations"] == 3


@pytest.mark.parametrize("command", [["run"], ["replay"], ["status"], ["scan"], ["validate"], ["cache", "refresh"]])
def test_json_shows_as_a_flag(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    line = next(line for line in result.stdout.splitlines() if "--json" in line)
    assert "--no-json" not in line
    assert "<bool>" not in line


@pytest.mark.parametrize("command", [["replay"], ["scan"], ["cache", "refresh"]])
def test_date_options_show_their_format(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], terminal_width=200)
    assert "%Y-%m-%d" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["replay", "--start", "2016-13-01"],
        ["replay", "--end", "yesterday"],
        ["scan", "--as-of", "2018-02-31"],
        ["cache", "refresh", "--as-of", "2018/02/07"],
    ],
)
def test_a_bad_date_is_a_usage_error(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert args[-2] in result.stderr
    assert "Traceback" not in result.output


# ---- runs that would do nothing exit 2 with the reason ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--start", "2020-01-01"], ["--start 2020-01-01", "2013-02-08", "2018-02-07"]),
        (["--start", "2016-06-01", "--end", "2016-01-04"], ["--end 2016-01-04 is before --start", "2013-02-08"]),
        (["--start", "2016-01-02", "--end", "2016-01-03"], ["no bundled session", "2018-02-07"]),
    ],
)
def test_replay_out_of_range_names_the_available_range(args: list[str], needles: list[str]) -> None:
    result = runner.invoke(app, ["replay", *args])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    for needle in needles:
        assert needle in result.stderr
    assert "SIM_" not in result.stderr  # the user set no SIM_ variable


def test_sim_start_out_of_range_names_sim_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_START", "2020-01-01")
    result = runner.invoke(app, ["run", "--iterations", "1"])
    assert result.exit_code == 2
    assert "SIM_START 2020-01-01" in result.stderr
    assert "2018-02-07" in result.stderr


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"BAR_TIMEFRAME": "15Min"}, "BAR_TIMEFRAME=15Min"),
        ({"BAR_TIMEFRAME": "1Min"}, "BAR_TIMEFRAME=1Min"),
        ({"SYMBOLS": "ZZZZ,QQQQ"}, "SYMBOLS"),
        ({"SIM_START": "not-a-date"}, "SIM_START"),
        ({"SIM_DATA_FILE": "missing.csv.xz"}, "SIM_DATA_FILE"),
    ],
)
def test_sim_settings_that_cannot_run_exit_2(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], needle: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = runner.invoke(app, ["run", "--iterations", "1"])
    assert result.exit_code == 2
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_an_empty_universe_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("Symbol,Name,Sector,Market Cap\n")
    monkeypatch.setenv("SIM_UNIVERSE_FILE", str(empty))
    result = runner.invoke(app, ["run", "--iterations", "1"])
    assert result.exit_code == 2
    assert "SIM_UNIVERSE_FILE" in result.stderr
    assert "nothing to trade" in result.stderr


# ---- halt / resume / status: local state only ----------------------------------------------------------------------


def test_resume_when_not_halted_says_so() -> None:
    result = runner.invoke(app, ["resume"])
    assert result.exit_code == 0
    assert result.stdout.strip().startswith("nothing to resume (sim): not halted; state DB ")


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_halt_resume_status_need_no_keys_and_no_broker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str
) -> None:
    def no_network(*_: object, **__: object) -> None:
        raise AssertionError("halt/resume/status must not open a connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    result = runner.invoke(app, ["halt", "--mode", mode, "--reason", "ops"])
    assert result.exit_code == 0, result.output
    db = tmp_path / "var" / mode / "state.db"
    assert result.stdout.strip() == (
        f"halted ({mode}): ops; state DB {db} did not exist and was created: no daemon has run with this DATA_DIR yet"
    )
    status = runner.invoke(app, ["status", "--mode", mode, "--json"])
    assert status.exit_code == 0, status.output
    document = json.loads(status.stdout)
    assert document["mode"] == mode
    assert document["flags"]["halted"] == "ops"
    assert runner.invoke(app, ["resume", "--mode", mode]).stdout.strip() == f"resumed ({mode}); state DB {db}"
    again = runner.invoke(app, ["resume", "--mode", mode]).stdout.strip()
    assert again == f"nothing to resume ({mode}): not halted; state DB {db}"


def test_halt_and_resume_print_only_their_result_and_log_to_the_daemons_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    halted = runner.invoke(app, ["halt", "--reason", "lunch"])
    resumed = runner.invoke(app, ["resume"])
    assert halted.exit_code == resumed.exit_code == 0
    assert halted.stderr == resumed.stderr == ""  # the log events are not repeated on the console
    assert len(halted.stdout.splitlines()) == len(resumed.stdout.splitlines()) == 1
    log = [json.loads(line) for line in (Path("var") / "sim" / "logs" / "tradingd.log").read_text().splitlines()]
    assert [(e["event"], e.get("reason")) for e in log] == [("trading_halted", "lunch"), ("risk_resumed", None)]


def test_a_setup_error_is_one_console_line_and_recorded_in_the_log_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAR_TIMEFRAME", "15Min")
    result = runner.invoke(app, ["run", "--once"])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "BAR_TIMEFRAME" in result.stderr
    log = [json.loads(line) for line in (Path("var") / "sim" / "logs" / "tradingd.log").read_text().splitlines()]
    assert [e["event"] for e in log] == ["setup_failed"]
    assert "BAR_TIMEFRAME" in log[0]["error"]


@pytest.mark.parametrize("command", [["status"], ["run", "--once"], ["halt"], ["scan"]])
def test_an_unusable_data_dir_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    Path("a-file").write_text("not a folder")
    monkeypatch.setenv("DATA_DIR", "a-file")
    monkeypatch.setattr(sys, "argv", ["tradingd", *command])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: a-file")
    assert "not a directory" in err.lower()
    assert len(err.strip().splitlines()) == 1


def test_run_in_paper_without_keys_still_exits_2_with_one_line() -> None:
    result = runner.invoke(app, ["run", "--mode", "paper", "--once"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "invalid configuration: --mode paper needs ALPACA_API_KEY and ALPACA_SECRET_KEY"


def test_status_with_a_missing_universe_file_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_UNIVERSE_FILE", "missing.csv")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2
    assert "SIM_UNIVERSE_FILE" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"MAX_POSITION_PCT": "0"}, "MAX_POSITION_PCT"),
        ({"TIER1_ALLOCATION": "0", "TIER2_ALLOCATION": "0", "TIER3_ALLOCATION": "0"}, "TIER1_ALLOCATION"),
        ({"SIM_INITIAL_CASH": "50"}, "MIN_ORDER_NOTIONAL"),
    ],
)
def test_settings_that_allow_no_order_exit_2(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    # Each of these used to run to the end denying every entry `below_min_notional`, and exit 0.
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = runner.invoke(app, ["run", "--iterations", "60"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"invalid configuration: {variable}")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "content",
    ["NOPE\nZZZZ\n", "Symbol,Sector\nNOPE,Energy\nZZZZ,Energy\n", "\x01\x02;;garbage??\n%%%,$$$\n"],
    ids=["unknown", "unknown-csv", "garbage"],
)
def test_run_with_an_unusable_scan_universe_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str
) -> None:
    universe = tmp_path / "u.txt"
    universe.write_text(content)
    monkeypatch.setenv("SCAN_UNIVERSE", str(universe))
    monkeypatch.setenv("USE_SCANNER", "true")
    result = runner.invoke(app, ["run", "--iterations", "1"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: SCAN_UNIVERSE: {universe}: none of its ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "var" / "sim" / "state.db").exists()  # refused before anything was built


def test_a_key_with_whitespace_never_reaches_the_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", " PKLEAKCANARY7731\n")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "SECRETLEAKCANARY9912 ")
    for command in (["run", "--once"], ["scan"], ["validate"], ["validate", "--json"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, command
        for canary in ("LEAKCANARY7731", "LEAKCANARY9912"):
            assert canary not in result.stdout + result.stderr, command
        assert "ALPACA_API_KEY" in result.stdout + result.stderr


# ---- one daemon per state: the lock ---------------------------------------------------------------------------------

LOCK_HOLDER = """
import sys
from pathlib import Path
from core.daemon_lock import acquire_daemon_lock
lock = acquire_daemon_lock(Path(sys.argv[1]), "run")
print("locked", flush=True)
sys.stdin.read()
lock.release()
"""


def _hold_lock(state_dir: Path) -> subprocess.Popen[str]:
    """A process that holds the daemon lock until its stdin closes (no sleeps: it says when it holds it)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(state_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.close()
    assert proc.wait() == 0
    proc.stdout.close()


def test_a_second_daemon_on_the_same_state_exits_2_and_leaves_the_state_alone(tmp_path: Path) -> None:
    from core.store import StateStore  # noqa: PLC0415

    assert runner.invoke(app, ["run", "--iterations", "40"]).exit_code == 0
    db = tmp_path / "var" / "sim" / "state.db"
    with StateStore(db) as store:
        store.set_flag("marker", "first daemon's state")
        journal = store.summary()["journal"]
        orders_before = len(store.order_records())
    assert journal > 0
    holder = _hold_lock(tmp_path / "var" / "sim")
    try:
        for command in (["run", "--iterations", "5"], ["replay", "--start", "2016-01-04", "--end", "2016-01-29"]):
            result = runner.invoke(app, command)
            assert result.exit_code == 2, (command, result.output)
            err = result.stderr.strip()
            assert len(err.splitlines()) == 1
            assert err.startswith(f"error: {tmp_path / 'var' / 'sim'} is in use by tradingd pid {holder.pid} (started ")
            assert err.endswith(", run); one daemon per state")
            assert "Traceback" not in result.output
        # The refused runs never reset the sim state: the same database, marker and journal.
        with StateStore(db) as store:
            assert store.get_flag("marker") == "first daemon's state"
            assert store.summary()["journal"] == journal
        # Everything that only reads or flips flags works while a daemon holds the lock: the kill switch above all.
        assert runner.invoke(app, ["halt", "--reason", "ops"]).exit_code == 0
        status = runner.invoke(app, ["status", "--json"])
        assert status.exit_code == 0, status.output
        assert json.loads(status.stdout)["flags"]["halted"] == "ops"
        listed = runner.invoke(app, ["orders", "--json"])
        assert listed.exit_code == 0, listed.output
        assert len(json.loads(listed.stdout)["orders"]) == orders_before
        assert runner.invoke(app, ["fills", "--json"]).exit_code == 0
        assert runner.invoke(app, ["resume"]).exit_code == 0
        log = [
            json.loads(line) for line in (tmp_path / "var" / "sim" / "logs" / "tradingd.log").read_text().splitlines()
        ]
        refused = [e for e in log if e["event"] == "state_in_use"]
        assert [e["command"] for e in refused] == ["run", "replay"]
    finally:
        _release(holder)
    result = runner.invoke(app, ["run", "--iterations", "5", "--json"])  # released: the next daemon runs
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["iterations"] == 5
    with StateStore(db) as store:
        assert store.get_flag("marker") is None  # this run held the lock, so it reset the sim state


def test_a_daemon_killed_with_sigkill_does_not_block_the_next(tmp_path: Path) -> None:
    holder = _hold_lock(tmp_path / "var" / "sim")
    holder.kill()
    holder.wait()
    for stream in (holder.stdin, holder.stdout):
        assert stream is not None
        stream.close()
    result = runner.invoke(app, ["run", "--iterations", "2", "--json"])
    assert result.exit_code == 0, result.output
    lock_text = json.loads((tmp_path / "var" / "sim" / "daemon.lock").read_text())
    assert lock_text["pid"] == os.getpid()
    assert lock_text["command"] == "run"


def test_a_paper_daemon_is_refused_before_it_contacts_the_broker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def no_network(*_: object, **__: object) -> None:
        raise AssertionError("a refused daemon must not open a connection")

    monkeypatch.setenv("ALPACA_API_KEY", "k")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "s")
    holder = _hold_lock(tmp_path / "var" / "paper")
    try:
        monkeypatch.setattr(socket.socket, "connect", no_network)
        result = runner.invoke(app, ["run", "--mode", "paper", "--once"])
    finally:
        _release(holder)
    assert result.exit_code == 2, result.output
    assert "var/paper is in use by tradingd pid" in result.stderr
    assert not (tmp_path / "var" / "paper" / "state.db").exists()


# ---- orders / fills listings ----------------------------------------------------------------------------------------


def test_orders_and_fills_list_what_the_store_holds() -> None:
    assert runner.invoke(app, ["replay", "--start", "2016-01-04", "--end", "2016-03-31"]).exit_code == 0
    everything = runner.invoke(app, ["orders", "--json"])
    assert everything.exit_code == 0, everything.output
    orders = json.loads(everything.stdout)["orders"]
    assert orders
    first = orders[0]
    assert {"client_order_id", "symbol", "side", "qty", "notional", "status", "submitted_at", "updated_at",
            "reason"} <= set(first)  # fmt: skip
    assert isinstance(first["filled_qty"], str)
    assert first["qty"] is None or isinstance(first["qty"], str)
    markets = [o for o in orders if o["order_type"] == "market"]
    assert markets
    assert {(o["time_in_force"], o["stop_price"], o["trail_percent"]) for o in markets} == {("day", None, None)}
    filled = json.loads(runner.invoke(app, ["orders", "--status", "filled", "--json"]).stdout)["orders"]
    assert filled
    assert {o["status"] for o in filled} == {"filled"}
    open_ = json.loads(runner.invoke(app, ["orders", "--status", "OPEN", "--json"]).stdout)["orders"]
    assert {o["status"] for o in open_} <= {"new", "accepted", "partially_filled"}
    assert len(filled) + len(open_) <= len(orders)

    fills = json.loads(runner.invoke(app, ["fills", "--json"]).stdout)["fills"]
    assert fills
    assert {"ts", "symbol", "side", "qty", "price", "client_order_id"} <= set(fills[0])
    assert all(isinstance(f["price"], str) and isinstance(f["qty"], str) for f in fills)
    assert [f["ts"] for f in fills] == sorted(f["ts"] for f in fills)
    recent = json.loads(runner.invoke(app, ["fills", "--since", "2016-03-01", "--json"]).stdout)["fills"]
    assert recent == [f for f in fills if f["ts"] >= "2016-03-01T05:00"]  # midnight in New York, in UTC

    table = runner.invoke(app, ["orders"])
    assert table.exit_code == 0
    assert f"orders (sim) ({len(orders)})" in table.stdout
    assert first["client_order_id"] in table.stdout
    assert "\x1b" not in table.stdout
    listing = runner.invoke(app, ["fills", "--since", "2016-03-01"])
    assert listing.exit_code == 0
    assert f"fills (sim, since 2016-03-01) ({len(recent)})" in listing.stdout
    assert "\x1b" not in listing.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["orders", "--status", "done"], "--status"), (["fills", "--since", "2016-02-31"], "--since")],
)
def test_a_bad_listing_filter_is_a_usage_error(args: list[str], needle: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("mode", ["sim", "paper", "live"])
def test_listings_need_no_keys_no_broker_and_create_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str
) -> None:
    def no_network(*_: object, **__: object) -> None:
        raise AssertionError("orders/fills must not open a connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    for command in ("orders", "fills"):
        result = runner.invoke(app, [command, "--mode", mode, "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)[command] == []
        table = runner.invoke(app, [command, "--mode", mode])
        assert "does not exist: no daemon has run with this DATA_DIR yet" in table.stdout
    assert not (tmp_path / "var" / mode / "state.db").exists()


def test_halt_reduce_only_and_resume_show_the_trading_state() -> None:
    result = runner.invoke(app, ["halt", "--reduce-only", "--reason", "earnings"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("reducing (sim): earnings;")
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert status["trading_state"]["state"] == "reducing"
    assert status["trading_state"]["reasons"][0]["code"] == "reduce_only"
    table = runner.invoke(app, ["status"]).stdout
    assert "trading state" in table
    assert "REDUCING" in table
    assert runner.invoke(app, ["resume"]).stdout.startswith("resumed (sim)")
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert status["trading_state"] == {"state": "active", "reasons": []}


def test_resume_after_a_drawdown_trip_measures_from_the_last_recorded_equity(tmp_path: Path) -> None:
    db = tmp_path / "var" / "sim" / "state.db"
    db.parent.mkdir(parents=True)
    with StateStore(db) as store:
        store.mark_equity(date(2017, 7, 3), Decimal(10_000))
        store.mark_equity(date(2017, 7, 5), Decimal("8950.25"))
        store.set_flag(FLAG_DRAWDOWN, "equity 8950.25 is 10.50% below peak 10000.00")
    result = runner.invoke(app, ["resume"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("resumed (sim), drawdown breaker lifted;")
    with StateStore(db) as store:
        assert store.get_flag(FLAG_DRAWDOWN) is None
        assert store.get_flag(FLAG_DRAWDOWN_PEAK) == "8950.25"


def test_resume_withdraws_a_drawdown_flatten_still_pending(tmp_path: Path) -> None:
    db = tmp_path / "var" / "sim" / "state.db"
    db.parent.mkdir(parents=True)
    with StateStore(db) as store:
        store.set_flag(FLAG_DRAWDOWN, "equity 8950.25 is 10.50% below peak 10000.00")
        flatten = CloseRequests(store)
        flatten.request(
            ALL, tag="flatten", reason="flatten: dd", now=datetime(2017, 7, 5, tzinfo=UTC), breaker="max_drawdown"
        )
    assert json.loads(runner.invoke(app, ["status", "--json"]).stdout)["close_requests"][0]["target"] == ALL
    result = runner.invoke(app, ["resume"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("resumed (sim), drawdown breaker lifted and its flatten withdrawn;")
    assert json.loads(runner.invoke(app, ["status", "--json"]).stdout)["close_requests"] == []


def test_halt_survives_a_deleted_state_db(tmp_path: Path) -> None:
    assert runner.invoke(app, ["halt", "--reason", "test"]).exit_code == 0
    (tmp_path / "var" / "sim" / "state.db").unlink()
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert status["trading_state"]["state"] == "halted"
    result = runner.invoke(app, ["run", "--iterations", "60", "--json"])
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["orders_approved"] == 0
    assert summary["denied"]["halted"] > 0


@pytest.mark.parametrize(
    ("variable", "content", "needle"),
    [
        ("SIM_DATA_FILE", b"\x00\xffnot xz" * 100, "not a valid bar file (Input format not supported by decoder)"),
        ("SIM_DATA_FILE", b"a,b\n1,2\n", "not a valid bar file (Usecols do not match"),
        ("SIM_UNIVERSE_FILE", b"a,b\n1,2\n", "not a valid constituents file (Usecols do not match"),
    ],
)
def test_unreadable_sim_file_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, content: bytes, needle: str
) -> None:
    path = tmp_path / ("bad.csv.xz" if content.startswith(b"\x00") else "bad.csv")
    path.write_bytes(content)
    monkeypatch.setenv(variable, str(path))
    result = runner.invoke(app, ["run", "--iterations", "1"])
    assert result.exit_code == 2
    assert result.stderr == f"error: {variable}: {path}: {needle}" + result.stderr.split(needle, 1)[1]
    assert len(result.stderr.splitlines()) == 1
    # The scan commands read the same files: one line naming the variable too (never a traceback).
    scanned = runner.invoke(app, ["scan"])
    assert scanned.exit_code == 2
    assert scanned.stderr.startswith(f"error: {variable}: {path}: ")
    assert len(scanned.stderr.splitlines()) == 1


def test_missing_sim_data_file_the_user_set_is_not_told_to_set_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "absent.csv.xz"
    monkeypatch.setenv("SIM_DATA_FILE", str(path))
    result = runner.invoke(app, ["run", "--iterations", "1"])
    assert result.exit_code == 2
    assert result.stderr == f"error: SIM_DATA_FILE={path}: no such file\n"


def test_non_utf8_dotenv_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"LOG_LEVEL=\xff\n")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2
    assert result.stderr == "invalid configuration: .env: not valid UTF-8 (byte 0xff at position 10)\n"


def test_halt_masks_a_secret_in_its_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As the dashboard's `POST /api/halt` does: a pasted key never reaches the state DB (which the page shows)."""
    secret = "HaltReasonSecret0123456789abcdef"
    monkeypatch.setenv("ALPACA_SECRET_KEY", secret)
    result = runner.invoke(app, ["halt", "--reason", f"rotated key {secret}"])
    assert result.exit_code == 0, result.output
    assert secret not in result.output
    store = StateStore(tmp_path / "var" / "sim" / "state.db")
    try:
        flags = store.flags_with_prefix("")
    finally:
        store.close()
    assert any("rotated key ***" in value for value in flags.values()), flags
    assert not [value for value in flags.values() if secret in value]


def test_status_with_a_malformed_sim_data_file_gives_the_portfolio_risk_as_na(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert runner.invoke(app, ["replay", "--start", "2016-01-04", "--end", "2016-03-31"]).exit_code == 0
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a,b\n1,2\n")
    monkeypatch.setenv("SIM_DATA_FILE", str(bad))
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    portfolio = json.loads(result.stdout)["portfolio"]
    assert portfolio["positions"] > 0  # the figures are asked for: positions are held
    assert portfolio["volatility_pct"] is None
    assert "SIM_DATA_FILE unreadable" in portfolio["note"]
