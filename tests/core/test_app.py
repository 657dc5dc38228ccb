"""Tests for core/app.py's sim reset: a new replay starts from an empty state DB, never from an empty logs dir."""

from __future__ import annotations

from pathlib import Path

from agents.risk import FLAG_HALTED
from core.app import reset_sim_state
from core.store import StateStore


def test_sim_reset_removes_the_state_db_files_only(tmp_path: Path) -> None:
    db = tmp_path / "sim" / "state.db"
    with StateStore(db) as store:
        store.set_flag(FLAG_HALTED, "manual")
        store.set_flag("last_scan_date", "2018-02-07")
    for sidecar in ("state.db-wal", "state.db-shm"):
        (db.parent / sidecar).write_bytes(b"stale")
    logs = db.parent / "logs"
    logs.mkdir()
    (logs / "tradingd.log").write_text('{"event": "iteration"}\n')
    (logs / "tradingd.log.1").write_text('{"event": "older"}\n')
    (db.parent / "candidates.json").write_text("{}")  # the previous replay's picks, dated in the new one's future
    (db.parent / "volume_cache.db").write_bytes(b"the previous replay's averages")

    reset_sim_state(db)

    assert (logs / "tradingd.log").read_text() == '{"event": "iteration"}\n'
    assert (logs / "tradingd.log.1").exists()
    assert not (db.parent / "candidates.json").exists()
    assert not (db.parent / "volume_cache.db").exists()
    assert not (db.parent / "state.db-wal").exists() or (db.parent / "state.db-wal").read_bytes() != b"stale"
    with StateStore(db) as fresh:
        assert fresh.get_flag(FLAG_HALTED) == "manual"  # the kill switch is carried over
        assert fresh.get_flag("last_scan_date") is None
        assert fresh.summary()["journal"] == 0


def test_sim_reset_of_nothing_creates_a_fresh_db(tmp_path: Path) -> None:
    db = tmp_path / "sim" / "state.db"
    reset_sim_state(db)
    with StateStore(db) as fresh:
        assert fresh.flags() == {}
