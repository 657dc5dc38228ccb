"""The state DB's WAL checkpoints off the committing thread: the WAL gets copied into the database file by the
worker, the daemon's own connection only as a backstop, and closing the store stops the worker."""

from __future__ import annotations

import gc
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

from core.store import StateStore
from core.store.checkpoint import WalCheckpointer
from core.types import OrderStatus
from tests.core.store.records import make_order


def _wal_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # only the worker copies the WAL
    conn.execute("CREATE TABLE t (v TEXT)")
    return conn


def _uncopied_frames(conn: sqlite3.Connection) -> int:
    # A PASSIVE checkpoint of nothing new reports (busy, frames in the WAL, frames copied so far).
    _, in_wal, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(in_wal) - int(copied)


def test_the_worker_copies_the_wal_into_the_database_file(tmp_path: Path) -> None:
    with closing(_wal_db(tmp_path / "x.db")) as conn:
        for i in range(50):
            conn.execute("INSERT INTO t VALUES (?)", ("x" * 500 + str(i),))
        worker = WalCheckpointer(tmp_path / "x.db", min_gap=0.0)
        worker.notify()
        worker.close()  # its last checkpoint runs before close returns
        with closing(sqlite3.connect(tmp_path / "x.db", isolation_level=None)) as other:
            assert _uncopied_frames(other) == 0


def _workers() -> int:
    # Counted, not looked for: a store another test left open keeps its own worker, the same before and after.
    return sum(t.name == "state-db-checkpoint" for t in threading.enumerate())


def test_closing_without_a_commit_stops_the_worker(tmp_path: Path) -> None:
    before = _workers()
    with closing(_wal_db(tmp_path / "x.db")):
        worker = WalCheckpointer(tmp_path / "x.db")
        assert _workers() == before + 1
        worker.close()
    assert _workers() == before


def test_the_store_starts_its_worker_with_its_first_transaction_and_stops_it_on_close(tmp_path: Path) -> None:
    before = _workers()
    store = StateStore(tmp_path / "state.db")
    assert store.get_flag("halted") is None
    assert _workers() == before  # a store only read (`tradingd status`) starts none
    with store.transaction():
        store.upsert_order(make_order("a", status=OrderStatus.NEW))
    assert _workers() == before + 1
    with closing(sqlite3.connect(tmp_path / "state.db")) as other:
        assert other.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 1  # committed, seen by anyone
    store.close()
    assert _workers() == before
    with StateStore(tmp_path / "state.db") as again:
        assert again.has_order("a")


def test_a_store_dropped_without_close_stops_its_worker(tmp_path: Path) -> None:
    before = _workers()
    store = StateStore(tmp_path / "state.db")
    with store.transaction():
        store.upsert_order(make_order("a", status=OrderStatus.NEW))
    assert _workers() == before + 1
    del store
    gc.collect()
    assert _workers() == before  # the finaliser joined the worker
