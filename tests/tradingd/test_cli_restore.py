"""`tradingd restore`: list the backups, install one in place of the state DB (the current one set aside), keep the
kill switch, and make the next paper/live start recover in `reducing`; refused while a daemon holds the state."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from agents.risk import halt_trading, read_trading_state
from core.flags import FLAG_RECOVERY
from core.state_backup import BackupWhen, StateBackups, backup_dir, backup_path
from core.state_guard import FLAG_RESTORED, KillSwitchFile, kill_switch_path, open_guarded_state
from core.state_restore import restore_state
from core.store import SCHEMA_VERSION, StateStore
from core.types import OrderStatus, OrderType, TradingState
from tests.tradingd.test_cli import _hold_lock, _release
from tradingd.cli import app

runner = CliRunner()
DAY = date(2017, 8, 1)
STATE_DB_V2 = Path(__file__).parents[1] / "core" / "store" / "state_db_v2.sql"
NOW = datetime(2026, 12, 2, 3, 30, tzinfo=UTC)
pytestmark = pytest.mark.usefixtures("cli_env")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "var" / "paper" / "state.db"


def _daemon_run(db: Path, marker: str) -> None:
    """What a paper daemon start leaves: a run token in the DB and kill-switch file, and some state."""
    state = open_guarded_state(db, detect_loss=True, auto_resume=False)
    state.store.set_flag("marker", marker)
    state.store.close()


def _backup(db: Path, day: date = DAY) -> Path:
    path = StateBackups(db, keep=7, when=BackupWhen.DAILY).take(day, replace=False)
    assert path is not None
    return path


def _one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 2
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in err


def test_list_shows_date_size_and_path(db: Path) -> None:
    _daemon_run(db, "one")
    first = _backup(db, DAY)
    second = _backup(db, date(2017, 8, 2))
    (backup_dir(db) / f".partial-state-{date(2017, 8, 3)}.db").write_bytes(b"half")  # a killed backup: not listed
    result = runner.invoke(app, ["restore", "--list", "--mode", "paper", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed["dir"] == str(backup_dir(db))
    assert listed["backups"] == [
        {"date": "2017-08-01", "size": first.stat().st_size, "path": str(first)},
        {"date": "2017-08-02", "size": second.stat().st_size, "path": str(second)},
    ]
    table = runner.invoke(app, ["restore", "--list", "--mode", "paper"])
    assert table.exit_code == 0, table.output
    assert "2017-08-02" in table.stdout
    assert str(backup_dir(db)) in table.stdout


def test_restore_sets_the_current_db_aside_and_installs_the_backup(db: Path) -> None:
    _daemon_run(db, "at backup time")
    _backup(db)
    _daemon_run(db, "later")
    result = runner.invoke(app, ["restore", "--mode", "paper", DAY.isoformat()])
    assert result.exit_code == 0, result.output
    set_aside = [p for p in db.parent.glob("state.db.pre-restore-*") if not p.name.endswith(("-wal", "-shm"))]
    assert len(set_aside) == 1
    assert str(set_aside[0]) in result.stdout  # says where the current DB went
    assert "reducing until `tradingd resume`" in result.stdout
    with StateStore(set_aside[0]) as old:
        assert old.get_flag("marker") == "later"  # never deleted, nothing lost
    with StateStore(db) as restored:
        assert restored.get_flag("marker") == "at backup time"
        assert restored.get_flag(FLAG_RESTORED) is not None
    status = json.loads(runner.invoke(app, ["status", "--mode", "paper", "--json"]).stdout)
    assert status["trading_state"]["state"] == "reducing"  # shown at once, before any daemon starts
    assert status["trading_state"]["reasons"][0]["code"] == "recovery"
    assert f"state-{DAY}.db" in status["trading_state"]["reasons"][0]["detail"]


def test_a_backup_written_by_schema_version_2_restores_and_migrates(db: Path, tmp_path: Path) -> None:
    _daemon_run(db, "live state")
    backup = tmp_path / "state-2018-02-05.db"
    with closing(sqlite3.connect(backup)) as conn:
        conn.executescript(STATE_DB_V2.read_text())

    restore_state(db, backup, recovery=True, now=NOW)

    with StateStore(db) as restored:
        assert restored.summary()["schema_version"] == SCHEMA_VERSION
        order = restored.get_order("td-zscore-AAPL-buy-1")
        assert order is not None
        assert (order.status, order.order_type, order.stop_price) == (OrderStatus.FILLED, OrderType.MARKET, None)
        assert restored.get_flag(FLAG_RECOVERY) is not None


@pytest.mark.parametrize(("auto_resume", "expected"), [(False, TradingState.REDUCING), (True, TradingState.ACTIVE)])
def test_the_next_start_after_a_restore_recovers(db: Path, auto_resume: bool, expected: TradingState) -> None:
    _daemon_run(db, "one")
    backup = _backup(db)  # taken during the last run: its run token is the last run's, so only the marker tells
    restore_state(db, backup, recovery=not auto_resume, now=NOW)
    state = open_guarded_state(db, detect_loss=True, auto_resume=auto_resume)
    assert read_trading_state(state.flags).state is expected
    assert state.recovery is not None
    assert "restored from" in state.recovery
    assert state.store.get_flag(FLAG_RESTORED) is None  # consumed: the restart after that is an ordinary one
    state.store.close()
    again = open_guarded_state(db, detect_loss=True, auto_resume=auto_resume)
    assert again.recovery is None
    assert read_trading_state(again.flags).state is expected  # reducing until `tradingd resume`, not forgotten
    again.store.close()


def test_a_restore_keeps_the_kill_switch_as_it_is_now(db: Path) -> None:
    _daemon_run(db, "one")
    with StateStore(db) as store:
        store.set_flag("halted", "in the backup")  # the backup was halted; the operator has resumed since
    backup = _backup(db)
    with StateStore(db) as store:
        store.clear_flag("halted")
    state = open_guarded_state(db, detect_loss=True, auto_resume=False)
    halt_trading(state.flags, "ops now", reduce_only=True)
    state.store.close()
    db.unlink()  # even with the DB gone, the kill-switch file remembers
    restored = restore_state(db, backup, recovery=True, now=NOW)
    assert restored.kill_switch == {"reduce_only": "ops now"}
    assert restored.set_aside is None
    with StateStore(db) as store:
        assert store.get_flag("reduce_only") == "ops now"
        assert store.get_flag("halted") is None
    assert KillSwitchFile(kill_switch_path(db)).read().get("reduce_only") == "ops now"


def test_a_halt_in_the_kill_switch_file_survives_the_restore(db: Path) -> None:
    _daemon_run(db, "one")
    backup = _backup(db)
    result = runner.invoke(app, ["halt", "--mode", "paper", "--reason", "ops"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["restore", "--mode", "paper", str(backup), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kill_switch"] == {"halted": "ops"}
    state = open_guarded_state(db, detect_loss=True, auto_resume=False)
    assert read_trading_state(state.flags).state is TradingState.HALTED
    assert state.store.get_flag(FLAG_RECOVERY) is not None  # recovery too, under the halt
    state.store.close()


def test_restore_is_refused_while_a_daemon_holds_the_state(db: Path) -> None:
    _daemon_run(db, "live state")
    _backup(db)
    holder = _hold_lock(db.parent)
    try:
        result = runner.invoke(app, ["restore", "--mode", "paper", DAY.isoformat()])
    finally:
        _release(holder)
    _one_line_error(result, f"is in use by tradingd pid {holder.pid}", "one daemon per state")
    assert not list(db.parent.glob("state.db.pre-restore-*"))
    with StateStore(db) as store:
        assert store.get_flag("marker") == "live state"
        assert store.get_flag(FLAG_RESTORED) is None


def test_a_missing_date_is_one_line_exit_2(db: Path) -> None:
    _daemon_run(db, "one")
    _backup(db)
    result = runner.invoke(app, ["restore", "--mode", "paper", "2017-08-05"])
    _one_line_error(result, "no backup for 2017-08-05", str(backup_dir(db)), "2017-08-01 to 2017-08-01")
    _one_line_error(runner.invoke(app, ["restore", "--mode", "paper", "2017-02-30"]), "2017-02-30: not a date")


@pytest.mark.parametrize("content", ["garbage", "foreign", "truncated", "missing"])
def test_a_bad_backup_file_is_one_line_exit_2_and_changes_nothing(db: Path, tmp_path: Path, content: str) -> None:
    _daemon_run(db, "live state")
    bad = tmp_path / "bad.db"
    if content == "garbage":
        bad.write_bytes(b"this is not a database" * 100)
    elif content == "foreign":
        conn = sqlite3.connect(bad)
        conn.execute("CREATE TABLE recipes (name TEXT)")
        conn.commit()
        conn.close()
    elif content == "truncated":
        whole = _backup(db).read_bytes()
        bad.write_bytes(whole[: len(whole) // 2])
    result = runner.invoke(app, ["restore", "--mode", "paper", str(bad)])
    _one_line_error(result, str(bad))
    assert not list(db.parent.glob("state.db.pre-restore-*"))
    with StateStore(db) as store:
        assert store.get_flag("marker") == "live state"


def test_restore_needs_a_target_or_list() -> None:
    assert runner.invoke(app, ["restore"]).exit_code == 2
    assert runner.invoke(app, ["restore", "--list", "2017-08-01"]).exit_code == 2


def test_a_sim_restore_says_the_next_run_starts_fresh(tmp_path: Path) -> None:
    db = tmp_path / "var" / "sim" / "state.db"
    with StateStore(db) as store:
        store.set_flag("marker", "sim")
    backup = _backup(db)
    result = runner.invoke(app, ["restore", "--mode", "sim", str(backup)])
    assert result.exit_code == 0, result.output
    assert "a sim run starts from a fresh state" in result.stdout
    with StateStore(db) as store:
        assert store.get_flag(FLAG_RECOVERY) is None  # no broker to reconcile with in sim
    assert backup_path(backup_dir(db), DAY).exists()  # restoring never consumes the backup
