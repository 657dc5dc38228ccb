"""The state DB's WAL checkpoints between ticks: asked for by the orchestrator after each tick, run on the store's own
connection only after a commit, at most every `min_gap` seconds, never inside a transaction, never raising."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from structlog.testing import capture_logs

from core.store import StateStore
from core.store.checkpoint import IdleCheckpointer
from core.types import OrderStatus
from tests.core.store.records import make_order


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _wal_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # only the checkpointer under test copies the WAL
    conn.execute("CREATE TABLE t (v TEXT)")
    return conn


def test_a_checkpoint_after_a_commit_copies_the_wal_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    with closing(_wal_db(path)) as conn:
        checkpointer = IdleCheckpointer(conn, monotonic=_Clock())
        conn.execute("INSERT INTO t VALUES (?)", ("marker-in-the-wal",))
        checkpointer.committed()
        assert b"marker-in-the-wal" not in path.read_bytes()  # committed: in the -wal file only
        assert checkpointer.run_if_due()
        assert b"marker-in-the-wal" in path.read_bytes()


def test_nothing_committed_since_the_last_checkpoint_means_none(tmp_path: Path) -> None:
    with closing(_wal_db(tmp_path / "x.db")) as conn:
        clock = _Clock()
        checkpointer = IdleCheckpointer(conn, monotonic=clock)
        assert not checkpointer.run_if_due()  # nothing committed yet
        checkpointer.committed()
        assert checkpointer.run_if_due()
        clock.now += 60
        assert not checkpointer.run_if_due()  # however long after: nothing new to copy


def test_at_most_one_checkpoint_per_min_gap(tmp_path: Path) -> None:
    with closing(_wal_db(tmp_path / "x.db")) as conn:
        clock = _Clock()
        checkpointer = IdleCheckpointer(conn, min_gap=0.5, monotonic=clock)
        checkpointer.committed()
        assert checkpointer.run_if_due()
        checkpointer.committed()
        clock.now += 0.1
        assert not checkpointer.run_if_due()  # a replay's next tick: too soon, the frames wait
        clock.now += 0.4
        assert checkpointer.run_if_due()  # the frames committed meanwhile were kept for this one


def test_never_inside_an_open_transaction(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        with store.transaction():
            store.upsert_order(make_order("a", status=OrderStatus.NEW))
        with store.transaction():
            store.upsert_order(make_order("b", status=OrderStatus.NEW))
            assert not store.checkpoint_if_due()
        assert store.checkpoint_if_due()


def test_a_store_only_read_never_checkpoints(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        assert store.get_flag("halted") is None
        assert not store.checkpoint_if_due()  # `tradingd status` changes nothing, not even the WAL settings


class _FailingConnection:
    in_transaction = False

    def execute(self, sql: str) -> sqlite3.Cursor:
        raise sqlite3.OperationalError("disk I/O error")


def test_a_failed_checkpoint_is_logged_never_raised() -> None:
    checkpointer = IdleCheckpointer(_FailingConnection(), monotonic=_Clock())  # type: ignore[arg-type]
    checkpointer.committed()
    with capture_logs() as logs:
        assert checkpointer.run_if_due()
    assert [entry["event"] for entry in logs] == ["wal_checkpoint_failed"]
    assert logs[0]["error"] == "disk I/O error"
