"""Opening the state DB: its schema and migrations, the files written before, and what happens to a bad file."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from core.store import SCHEMA_VERSION, EquityMark, StateStore, StateStoreError, schema
from core.types import Fill, OrderSide, OrderStatus, OrderType, Position, Tier, TimeInForce
from tests.core.store.records import QUARANTINE_TIME, T0, make_order, make_signal
from tests.fakes.damage import DAMAGE, damage
from tests.state_db import journal_rows

# A state DB written by the code before `core/store/` was split into modules (see the file's header).
BEFORE_SPLIT = Path(__file__).with_name("state_db_v2.sql")


def set_user_version(path: Path, version: int) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {version:d}")


def sqlite_master(path: Path) -> set[tuple[str, str, str, str | None]]:
    with closing(sqlite3.connect(path)) as conn:
        return set(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))


def columns(path: Path, table: str) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM pragma_table_info(?)", (table,))]


def restore_dump(dump: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(dump.read_text())


# ----------------------------------------------------------------------------------------------------------------------
# OPENING AND SCHEMA
# ----------------------------------------------------------------------------------------------------------------------


def test_open_creates_parent_dirs_and_a_wal_database(db_path: Path) -> None:
    StateStore(db_path).close()
    assert db_path.is_file()
    with closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_the_state_db_connection_uses_synchronous_normal(db_path: Path) -> None:
    db = schema.open_state_db(db_path, utc_now=lambda: QUARANTINE_TIME)
    try:
        assert db.conn.execute("PRAGMA synchronous").fetchone() == (1,)  # 1 == NORMAL
    finally:
        db.close()


def test_every_schema_version_has_a_migration() -> None:
    assert len(schema._MIGRATIONS) == SCHEMA_VERSION


def test_a_version_2_db_migrates_to_the_schema_a_fresh_db_has(db_path: Path, tmp_path: Path) -> None:
    """Every table, index and column, down to the SQL text: a v2 file opened now is what a fresh file is."""
    before = tmp_path / "before.db"
    restore_dump(BEFORE_SPLIT, before)
    v2_columns = columns(before, "orders")

    StateStore(before).close()
    StateStore(db_path).close()

    assert sqlite_master(before) == sqlite_master(db_path)
    added = ["order_type", "time_in_force", "stop_price", "trail_percent", "exit_reason"]
    assert columns(before, "orders") == [*v2_columns, *added]
    with closing(sqlite3.connect(before)) as conn:
        assert schema.schema_version(conn) == SCHEMA_VERSION == 5


def test_a_version_2_backup_checks_sound_and_is_left_as_it_was(tmp_path: Path) -> None:
    backup = tmp_path / "state-2018-02-05.db"
    restore_dump(BEFORE_SPLIT, backup)
    content = backup.read_bytes()

    schema.check_state_db(backup)  # what `tradingd restore` asks of a backup before installing it

    assert backup.read_bytes() == content  # checked, not migrated: the first open after the restore does that


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("ALTER TABLE orders DROP COLUMN tier", "missing orders(tier)"),  # a table of version 2 lost a column
        ("PRAGMA user_version = 0", "schema version 0"),  # no file of ours was ever left at 0
    ],
)
def test_a_version_2_file_that_is_not_what_version_2_wrote_is_not_sound(
    tmp_path: Path, damage: str, reason: str
) -> None:
    backup = tmp_path / "state.db"
    restore_dump(BEFORE_SPLIT, backup)
    with closing(sqlite3.connect(backup)) as conn:
        conn.execute(damage)

    with pytest.raises(StateStoreError, match=re.escape(reason)):
        schema.check_state_db(backup)


def test_since_version_2_the_orders_table_changed_and_the_high_water_marks_came(db_path: Path, tmp_path: Path) -> None:
    before = tmp_path / "before.db"
    restore_dump(BEFORE_SPLIT, before)
    StateStore(db_path).close()
    changed = sqlite_master(db_path) ^ sqlite_master(before)
    assert {name for _type, name, _table, _sql in changed} == {
        "orders",  # schema 3: the stop fields
        "high_water_marks",  # schema 4: the trailing stops' marks
        "sqlite_autoindex_high_water_marks_1",
    }


def test_a_state_db_written_before_the_split_opens_and_keeps_working(db_path: Path) -> None:
    restore_dump(BEFORE_SPLIT, db_path)

    with StateStore(db_path) as s:
        record = s.order_record("td-zscore-AAPL-buy-1")
        assert record is not None
        assert (record.order.status, record.order.filled_qty, record.order.filled_avg_price) == (
            OrderStatus.FILLED,
            Decimal("9.402031"),
            Decimal("159.54"),
        )
        assert (record.strategy, record.tier, record.signal_bar_ts) == ("zscore", Tier.TIER3, T0 - timedelta(hours=6.5))
        # Written before stops existed: every order was a day market order, and reads as one.
        assert (record.order.order_type, record.order.time_in_force) == (OrderType.MARKET, TimeInForce.DAY)
        assert (record.order.stop_price, record.order.trail_percent, record.order.is_stop) == (None, None, False)
        assert [o.client_order_id for o in s.pending_orders()] == ["td-zscore-MSFT-sell-2"]
        filled_at = T0 + timedelta(seconds=1)
        assert s.fills() == [
            Fill(
                "x-1", "td-zscore-AAPL-buy-1", "AAPL", OrderSide.BUY, Decimal("9.402031"), Decimal("159.54"), filled_at
            )
        ]
        assert s.load_positions() == {
            "AAPL": Position("AAPL", Decimal("9.402031"), Decimal("159.54"), Decimal("160.01"))
        }
        session = date(2018, 2, 5)
        assert s.equity_mark(session) == EquityMark(
            session, Decimal("101250.50"), Decimal("100990.10"), Decimal("101250.50")
        )
        summary = s.summary()
        assert summary["peak_equity"] == "101250.50"
        assert summary["flags"] == {"halted": "manual", "last_scan_date": "2018-02-05"}
        assert summary["journal"] == 2
        assert summary["schema_version"] == SCHEMA_VERSION

        assert s.mark_equity(date(2018, 2, 6), Decimal("100500")).peak_equity == Decimal("101250.50")
        assert s.upsert_order(make_order("td-zscore-MSFT-sell-2", status=OrderStatus.NEW, symbol="MSFT"))
        s.journal([make_signal("MSFT")])

    assert [(r["type"], r["payload"]["symbol"]) for r in journal_rows(db_path)[::2]] == [
        ("SignalGenerated", "AAPL"),
        ("SignalGenerated", "MSFT"),
    ]
    assert list(db_path.parent.glob("*.corrupt-*")) == []


@pytest.mark.parametrize("version", [0, 2])
def test_migration_is_idempotent_when_tables_exist_but_version_was_not_bumped(db_path: Path, version: int) -> None:
    # As if a migration's DDL had run but the process died before its version bump (2: the columns of 3 are there).
    with StateStore(db_path) as s:
        s.set_flag("halted", "1")
    set_user_version(db_path, version)
    with StateStore(db_path) as s:
        assert s.summary()["schema_version"] == SCHEMA_VERSION
        assert s.get_flag("halted") == "1"


def test_a_newer_schema_is_refused_and_left_untouched(db_path: Path) -> None:
    with StateStore(db_path) as s:
        s.set_flag("halted", "1")
    set_user_version(db_path, SCHEMA_VERSION + 1)
    with pytest.raises(StateStoreError, match="newer"):
        StateStore(db_path)
    assert list(db_path.parent.glob("*.corrupt-*")) == []


# ----------------------------------------------------------------------------------------------------------------------
# CORRUPT OR FOREIGN FILES
# ----------------------------------------------------------------------------------------------------------------------


def test_garbage_file_is_quarantined_and_a_fresh_db_started(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    garbage = b"this is not an SQLite database\x00\xff" * 300
    db_path.write_bytes(garbage)

    with capture_logs() as logs, StateStore(db_path, utc_now=lambda: QUARANTINE_TIME) as s:
        assert s.order_records() == []
        assert s.upsert_order(make_order())
        assert s.get_order("zscore-AAPL-buy-1") == make_order()

    quarantined = db_path.with_name("state.db.corrupt-20240102T030405Z")
    assert quarantined.read_bytes() == garbage
    warnings = [e for e in logs if e["event"] == "state_db_corrupt"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["moved_to"] == str(quarantined)


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_state_db_is_set_aside_and_a_fresh_one_keeps_working(db_path: Path, how: str) -> None:
    with StateStore(db_path) as s:
        s.journal([make_signal(symbol=f"S{i:03d}") for i in range(300)])
        s.set_flag("halted", "old")
    content = damage(db_path, how)

    with capture_logs() as logs, StateStore(db_path, utc_now=lambda: QUARANTINE_TIME) as s:
        assert s.get_flag("halted") is None  # a fresh state, not the damaged one
        with s.transaction():
            s.upsert_order(make_order())
        assert s.get_order("zscore-AAPL-buy-1") == make_order()

    quarantined = db_path.with_name("state.db.corrupt-20240102T030405Z")
    assert quarantined.read_bytes() == content
    assert [(e["event"], e["moved_to"]) for e in logs] == [("state_db_corrupt", str(quarantined))]


def test_damaged_page_inside_a_valid_file_is_quarantined(db_path: Path) -> None:
    with StateStore(db_path) as s:
        s.journal([make_signal(symbol=f"S{i:03d}") for i in range(300)])
    data = bytearray(db_path.read_bytes())
    page_size = 4096
    assert len(data) > 4 * page_size
    data[2 * page_size : 3 * page_size] = b"\xab" * page_size
    db_path.write_bytes(bytes(data))

    with capture_logs() as logs, StateStore(db_path, utc_now=lambda: QUARANTINE_TIME) as s:
        assert s.summary()["journal"] == 0

    assert db_path.with_name("state.db.corrupt-20240102T030405Z").read_bytes() == bytes(data)
    assert [e["event"] for e in logs] == ["state_db_corrupt"]


def test_second_corruption_in_the_same_second_does_not_overwrite_the_first(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    for content in (b"first garbage" * 100, b"second garbage" * 100):
        db_path.write_bytes(content)
        StateStore(db_path, utc_now=lambda: QUARANTINE_TIME).close()
    assert db_path.with_name("state.db.corrupt-20240102T030405Z").read_bytes() == b"first garbage" * 100
    assert db_path.with_name("state.db.corrupt-20240102T030405Z-2").read_bytes() == b"second garbage" * 100


def test_stale_wal_sidecar_moves_with_the_corrupt_file(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"garbage" * 500)
    wal = db_path.with_name("state.db-wal")
    wal.write_bytes(b"old wal frames" * 10)

    with StateStore(db_path, utc_now=lambda: QUARANTINE_TIME) as s:
        s.set_flag("halted", "1")

    assert db_path.with_name("state.db.corrupt-20240102T030405Z-wal").read_bytes() == b"old wal frames" * 10
    with StateStore(db_path) as s:
        assert s.get_flag("halted") == "1"


def test_a_path_that_cannot_be_opened_is_an_error_not_a_corruption(db_path: Path) -> None:
    db_path.mkdir(parents=True)  # a directory where the file should be: a fresh file would not fix this
    with pytest.raises(sqlite3.OperationalError):
        StateStore(db_path)
    assert db_path.is_dir()
    assert list(db_path.parent.glob("*.corrupt-*")) == []


@pytest.mark.parametrize(
    "damage",
    [
        ["CREATE TABLE orders (x)"],  # a sound SQLite file that was never ours
        ["DROP TABLE fills"],  # ours at the current version, but a table is gone
    ],
    ids=["foreign-schema", "missing-table"],
)
def test_a_database_that_is_not_ours_is_set_aside_not_fatal(tmp_path: Path, damage: list[str]) -> None:
    path = tmp_path / "state.db"
    if damage[0].startswith("DROP"):
        with StateStore(path) as store:
            store.set_flag("marker", "old")
    conn = sqlite3.connect(path)
    for statement in damage:
        conn.execute(statement)
    conn.commit()
    conn.close()

    with capture_logs() as logs, StateStore(path) as store:
        assert store.fills() == []
        assert store.get_flag("marker") is None  # a fresh state, not the damaged one
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["state_db_corrupt"]
    assert list(tmp_path.glob("state.db.corrupt-*"))  # set aside, never deleted
