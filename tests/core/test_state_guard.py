"""The kill-switch file beside the state DB, and recovery after the DB was lost, set aside or restored."""

import shutil
from pathlib import Path

import pytest

from agents.risk import halt_trading, read_trading_state, resume_trading
from core.flags import FLAG_HALTED, FLAG_RECOVERY, FLAG_REDUCE_ONLY
from core.state_guard import KILL_SWITCH_FILE, KillSwitchFile, open_guarded_state
from core.types import TradingState
from tradingd.app import reset_sim_state


def _open(db: Path, *, auto_resume: bool = False) -> tuple[TradingState, str | None]:
    state = open_guarded_state(db, detect_loss=True, auto_resume=auto_resume)
    try:
        return read_trading_state(state.flags).state, state.recovery
    finally:
        state.store.close()


def _halt(db: Path, *, reduce_only: bool = False) -> None:
    state = open_guarded_state(db, detect_loss=True, auto_resume=False)
    halt_trading(state.flags, "ops", reduce_only=reduce_only)
    state.store.close()


def test_an_ordinary_restart_starts_in_the_state_it_stopped_in(tmp_path: Path) -> None:
    db = tmp_path / "paper" / "state.db"
    assert _open(db) == (TradingState.ACTIVE, None)  # first run ever: nothing was lost
    assert _open(db) == (TradingState.ACTIVE, None)
    _halt(db, reduce_only=True)
    assert _open(db) == (TradingState.REDUCING, None)


@pytest.mark.parametrize("loss", ["delete", "corrupt"])
def test_the_kill_switch_survives_the_loss_of_the_db(tmp_path: Path, loss: str) -> None:
    db = tmp_path / "paper" / "state.db"
    _halt(db)
    if loss == "delete":
        db.unlink()
    else:
        db.write_bytes(b"this is not a database" * 100)
    state, cause = _open(db)
    assert state is TradingState.HALTED
    assert cause is not None
    # The halt is back in the DB too, so status and a later restart agree.
    state2 = open_guarded_state(db, detect_loss=True, auto_resume=False)
    assert state2.store.get_flag(FLAG_HALTED) == "ops"
    state2.store.close()


@pytest.mark.parametrize("loss", ["delete", "corrupt", "restore"])
def test_state_loss_starts_reducing_until_resume(tmp_path: Path, loss: str) -> None:
    db = tmp_path / "live" / "state.db"
    _open(db)
    backup = tmp_path / "backup.db"
    shutil.copy(db, backup)
    _open(db)  # a later run: the backup is now stale
    if loss == "delete":
        db.unlink()
    elif loss == "corrupt":
        db.write_bytes(b"garbage" * 1000)
    else:
        shutil.copy(backup, db)
    state, cause = _open(db)
    assert state is TradingState.REDUCING
    assert cause is not None
    assert _open(db)[0] is TradingState.REDUCING  # a restart does not forget it
    guarded = open_guarded_state(db, detect_loss=True, auto_resume=False)
    assert guarded.store.get_flag(FLAG_RECOVERY) is not None
    resume_trading(guarded.flags, equity=None)
    guarded.store.close()
    assert _open(db) == (TradingState.ACTIVE, None)
    if loss == "corrupt":
        assert list(db.parent.glob("state.db.corrupt-*"))


def test_recovery_auto_resume_starts_active(tmp_path: Path) -> None:
    db = tmp_path / "paper" / "state.db"
    _open(db)
    db.unlink()
    state, cause = _open(db, auto_resume=True)
    assert state is TradingState.ACTIVE
    assert cause is not None


def test_an_unreadable_kill_switch_file_fails_closed(tmp_path: Path) -> None:
    db = tmp_path / "paper" / "state.db"
    _open(db)
    (db.parent / KILL_SWITCH_FILE).write_text("{not json")
    assert _open(db)[0] is TradingState.HALTED


def test_resume_clears_both_copies(tmp_path: Path) -> None:
    db = tmp_path / "paper" / "state.db"
    _halt(db)
    _halt(db, reduce_only=True)
    guarded = open_guarded_state(db, detect_loss=True, auto_resume=False)
    resume_trading(guarded.flags, equity=None)
    assert guarded.store.get_flag(FLAG_REDUCE_ONLY) is None
    guarded.store.close()
    text = (db.parent / KILL_SWITCH_FILE).read_text()
    assert '"halted": null' in text
    assert '"reduce_only": null' in text
    db.unlink()
    assert _open(db)[0] is TradingState.REDUCING  # lost DB (recovery), but no stale halt came back


def test_sim_reset_never_deletes_set_aside_files(tmp_path: Path) -> None:
    db = tmp_path / "sim" / "state.db"
    reset_sim_state(db)
    kept = [db.with_name("state.db.corrupt-20240101T000000Z"), db.with_name("state.db.corrupt-20240101T000000Z-wal")]
    for path in kept:
        path.write_bytes(b"evidence")
    db.write_bytes(b"garbage" * 1000)  # corrupt now: the reset sets it aside too, never deletes it
    reset_sim_state(db)
    for path in kept:
        assert path.read_bytes() == b"evidence"
    corrupt = [p for p in db.parent.glob("state.db.corrupt-*") if p not in kept and not p.name.endswith("-wal")]
    assert len(corrupt) == 1
    assert corrupt[0].read_bytes() == b"garbage" * 1000


def test_a_running_reader_sees_a_halt_written_by_another_process(tmp_path: Path) -> None:
    """The file is re-parsed only when it changed: the cache must never hide a new halt."""
    path = tmp_path / KILL_SWITCH_FILE
    daemon, operator = KillSwitchFile(path), KillSwitchFile(path)
    operator.write({})
    assert daemon.read() == {}  # cached now
    operator.write({FLAG_HALTED: "ops"})
    assert daemon.read() == {FLAG_HALTED: "ops"}
    path.unlink()
    assert daemon.read() == {}
