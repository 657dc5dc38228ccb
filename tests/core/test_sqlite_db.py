"""SqliteDb: how every SQLite file of the program is opened, kept private, set aside when bad, and written."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from core.sqlite_db import SqliteDb
from tests.fakes.damage import foreign_database


def _schema(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS items (name TEXT PRIMARY KEY, qty INTEGER NOT NULL)")


@contextmanager
def _open(path: Path) -> Iterator[SqliteDb]:
    db = SqliteDb(path, schema=_schema, kind="items", what="an items file")
    try:
        yield db
    finally:
        db.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "new" / "items.db"
    with _open(path) as db:
        db.conn.execute("INSERT INTO items VALUES ('a', 1)")
        assert db.conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
        assert _mode(path.parent) == 0o700
        assert _mode(path) == 0o600
        assert _mode(path.with_name("items.db-wal")) == 0o600
        assert db.set_aside is None


def _insert_and_fail(db: SqliteDb, name: str) -> None:
    with db.transaction():
        db.conn.execute("INSERT INTO items VALUES (?, 1)", (name,))
        raise RuntimeError(name)


def test_a_transaction_commits_together_and_a_failed_savepoint_keeps_the_rest(tmp_path: Path) -> None:
    with _open(tmp_path / "items.db") as db:
        with pytest.raises(RuntimeError):
            _insert_and_fail(db, "lost")
        with db.transaction():
            db.conn.execute("INSERT INTO items VALUES ('kept', 1)")
            with pytest.raises(RuntimeError):
                _insert_and_fail(db, "inner")  # nested: a savepoint, rolled back alone
            assert db.in_transaction
        assert not db.in_transaction
        assert db.conn.execute("SELECT name FROM items").fetchall() == [("kept",)]


def test_a_file_whose_table_lacks_a_column_is_set_aside_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "items.db"
    content = foreign_database(path, "CREATE TABLE items (name TEXT)", "INSERT INTO items VALUES ('theirs')")

    with capture_logs() as logs, _open(path) as db:
        assert db.conn.execute("SELECT COUNT(*) FROM items").fetchone() == (0,)
        assert db.set_aside is not None
        assert db.set_aside.name.startswith("items.db.corrupt-")
    [event] = logs
    assert (event["event"], event["moved_to"]) == ("items_corrupt", str(db.set_aside))
    assert "not an items file: missing items(qty)" in event["error"]
    assert db.set_aside.read_bytes() == content  # as it was found: nothing of ours was written into it first


def test_a_problem_a_fresh_file_would_not_fix_propagates_and_nothing_is_set_aside(tmp_path: Path) -> None:
    def refuses(conn: sqlite3.Connection) -> None:
        raise ValueError("written by a newer version")

    SqliteDb(tmp_path / "items.db", schema=_schema, kind="items", what="an items file").close()  # a sound file
    with pytest.raises(ValueError, match="newer"):
        SqliteDb(tmp_path / "items.db", schema=refuses, kind="items", what="an items file")
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(sqlite3.OperationalError):
        SqliteDb(tmp_path / "dir.db", schema=_schema, kind="items", what="an items file")
    assert list(tmp_path.glob("*.corrupt-*")) == []
