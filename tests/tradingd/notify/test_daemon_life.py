"""DaemonStarted / DaemonStopped and the unclean-restart marker, through the real `tradingd run`: a clean stop
removes the marker, a kill -9 (a failpoint's SIGKILL in a subprocess) leaves it, and the next start says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from tests.state_db import journal_rows
from tradingd.cli import app
from tradingd.daemon_life import RUN_MARKER

runner = CliRunner()
SYMBOLS = "AAPL,MSFT,XOM"


def _env(data_dir: Path) -> dict[str, str]:
    return {"DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING", "SYMBOLS": SYMBOLS, "USE_SCANNER": "false"}


def _run(data_dir: Path) -> list[bool]:
    """`unclean_restart` of each DaemonStarted the run journaled."""
    result = runner.invoke(app, ["run", "--mode", "sim", "--iterations", "3", "--json"], env=_env(data_dir))
    assert result.exit_code == 0, result.output
    rows = journal_rows(data_dir / "sim" / "state.db")
    return [row["payload"]["unclean_restart"] for row in rows if row["type"] == "DaemonStarted"]


def test_a_clean_run_starts_clean_and_removes_its_marker(tmp_path: Path) -> None:
    assert _run(tmp_path) == [False]
    assert not (tmp_path / "sim" / RUN_MARKER).exists()


def test_the_stop_is_journaled_last_with_its_reason(tmp_path: Path) -> None:
    _run(tmp_path)
    rows = journal_rows(tmp_path / "sim" / "state.db")
    assert rows[-1]["type"] == "DaemonStopped"
    assert rows[-1]["payload"]["reason"] == "finished"
    assert rows[-1]["payload"]["iterations"] == 3


def test_a_leftover_marker_means_an_unclean_restart(tmp_path: Path) -> None:
    (tmp_path / "sim").mkdir()
    (tmp_path / "sim" / RUN_MARKER).write_text('{"pid": 1}')
    assert _run(tmp_path) == [True]
    assert not (tmp_path / "sim" / RUN_MARKER).exists()
    assert _run(tmp_path) == [False]


def test_a_killed_daemon_leaves_the_marker_and_the_next_start_reports_it(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "TRADING_MODE", "NOTIFY_"))},
        **_env(tmp_path),
        "TRADINGD_TEST_HOOKS": "1",
        "TRADINGD_FAILPOINT": "iteration.committed:2",
    }
    killed = subprocess.run(
        [sys.executable, "-m", "tradingd", "run", "--mode", "sim", "--iterations", "5"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (tmp_path / "sim" / RUN_MARKER).exists()
    assert _run(tmp_path) == [True]
