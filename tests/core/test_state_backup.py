"""Daily backups of the state DB: consistent copies of a live WAL database, one per day, the newest N kept, never a
half-written file mistaken for a backup, and never a reason to stop trading."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from config.settings import ConfigError, Settings, load_settings
from core.messages import IterationStarted
from core.state_backup import (
    PARTIAL_PREFIX,
    BackupWhen,
    StateBackups,
    backup_dir,
    backup_path,
    list_backups,
    write_backup,
)
from core.store import StateStore, check_state_db
from core.types import BrokerOrder, Fill, OrderSide, OrderStatus
from tradingd.app import build_sim, load_assets, state_backups

T0 = datetime(2017, 8, 1, 14, 0, tzinfo=UTC)
DAY = date(2017, 8, 1)


def _fill_store(store: StateStore, n: int) -> None:
    """Orders, fills, flags and journal rows: every table a restore would need."""
    for i in range(n):
        coid = f"zscore-AAPL-buy-{i}"
        store.upsert_order(
            BrokerOrder(
                client_order_id=coid,
                broker_order_id=f"b-{i}",
                symbol="AAPL",
                side=OrderSide.BUY,
                qty=Decimal(1),
                notional=None,
                status=OrderStatus.FILLED,
                filled_qty=Decimal(1),
                filled_avg_price=Decimal("150.25"),
                submitted_at=T0,
                updated_at=T0,
            ),
            strategy="zscore",
        )
        store.record_fill(
            Fill(
                execution_id=f"b-{i}:1",
                client_order_id=coid,
                symbol="AAPL",
                side=OrderSide.BUY,
                qty=Decimal(1),
                price=Decimal("150.25"),
                ts=T0 + timedelta(minutes=i),
            )
        )
    store.set_flag("halted", "ops")
    store.journal([IterationStarted(ts_event=T0, ts_init=T0, iteration=1, n_symbols=29)])


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_a_backup_of_a_live_wal_db_is_a_sound_db_equal_to_the_source(tmp_path: Path) -> None:
    db = tmp_path / "paper" / "state.db"
    with StateStore(db) as store:
        _fill_store(store, 50)
        # The daemon still has the DB open: recent commits sit in the WAL, not yet in state.db.
        assert Path(f"{db}-wal").stat().st_size > 0
        target = backup_path(backup_dir(db), DAY)
        taken = StateBackups(db, keep=7, when=BackupWhen.DAILY).take(DAY, replace=False)
        assert taken == target
        check_state_db(target)  # integrity_check and our schema
        assert _dump(target) == _dump(db)
    assert not Path(f"{target}-wal").exists()  # one self-contained file, not a WAL database
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    with StateStore(target) as copy:
        assert len(copy.fills()) == 50
        assert copy.get_flag("halted") == "ops"


def test_one_backup_per_day_and_the_newest_n_kept(tmp_path: Path) -> None:
    db = tmp_path / "paper" / "state.db"
    backups = StateBackups(db, keep=3, when=BackupWhen.DAILY)
    with StateStore(db) as store:
        for i in range(5):
            day = DAY + timedelta(days=i)
            _fill_store(store, i + 1)
            asyncio.run(backups.on_new_day(day))
            first = backup_path(backups.directory, day).read_bytes()
            store.set_flag("marker", str(i))
            asyncio.run(backups.on_new_day(day))  # a restart later that day keeps the morning's backup
            assert backup_path(backups.directory, day).read_bytes() == first
            asyncio.run(backups.on_stop(day))  # daily backups are not taken at stop
    assert [b.day for b in list_backups(backups.directory)] == [DAY + timedelta(days=i) for i in (2, 3, 4)]


def test_a_replay_backs_up_once_when_it_ends(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, use_scanner=False, symbols=("AAPL", "MSFT", "XOM"), log_level="ERROR")
    app = build_sim(settings, start=date(2016, 1, 4), end=date(2016, 2, 26))
    assert app.orchestrator.backups is not None
    assert app.orchestrator.backups.when is BackupWhen.REPLAY_END

    async def go() -> None:
        await load_assets(app)
        await app.orchestrator.run()

    asyncio.run(go())
    assert [b.day for b in list_backups(backup_dir(app.store.path))] == [date(2016, 2, 26)]
    assert _dump(backup_path(backup_dir(app.store.path), date(2016, 2, 26))) == _dump(app.store.path)
    app.close()


def test_daily_backups_are_taken_at_the_first_iteration_of_each_session(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, use_scanner=False, symbols=("AAPL", "MSFT", "XOM"), log_level="ERROR")
    app = build_sim(settings, start=date(2016, 1, 4), end=date(2016, 1, 29))
    app.orchestrator.backups = StateBackups(app.store.path, keep=4, when=BackupWhen.DAILY)

    async def go() -> None:
        await load_assets(app)
        await app.orchestrator.run()

    asyncio.run(go())
    days = [b.day for b in list_backups(backup_dir(app.store.path))]
    app.close()
    assert days == [date(2016, 1, 26), date(2016, 1, 27), date(2016, 1, 28), date(2016, 1, 29)]


def test_a_backup_killed_midway_never_counts_and_is_cleaned_up_next_time(tmp_path: Path) -> None:
    db = tmp_path / "paper" / "state.db"
    backups = StateBackups(db, keep=7, when=BackupWhen.DAILY)
    with StateStore(db) as store:
        _fill_store(store, 3)
    directory = backups.directory
    directory.mkdir(parents=True)
    # What a kill -9 in the middle of write_backup leaves: a partial copy (and its journal) under the temp name.
    partial = directory / f"{PARTIAL_PREFIX}state-{DAY}.db"
    partial.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    Path(f"{partial}-journal").write_bytes(b"\x00" * 10)
    assert list_backups(directory) == []
    assert backups.take(DAY + timedelta(days=1), replace=False) is not None
    assert sorted(p.name for p in directory.iterdir()) == [f"state-{DAY + timedelta(days=1)}.db"]


def test_names_that_only_look_like_backups_are_not_listed(tmp_path: Path) -> None:
    directory = tmp_path / "backups"
    directory.mkdir()
    for name in ("state-2017-13-45.db", "state-2017-08-01.db.bak", "notes.txt", "state-2017-08-01.db"):
        (directory / name).write_bytes(b"x")
    (directory / "state-2017-08-02.db").mkdir()
    assert [b.path.name for b in list_backups(directory)] == ["state-2017-08-01.db"]


def test_a_failed_backup_is_a_warning_and_the_replay_goes_on(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, use_scanner=False, symbols=("AAPL", "MSFT", "XOM"), log_level="ERROR")
    app = build_sim(settings, start=date(2016, 1, 4), end=date(2016, 1, 29))
    app.orchestrator.backups = StateBackups(app.store.path, keep=3, when=BackupWhen.DAILY)
    backup_dir(app.store.path).write_text("a file where the backup folder should be")

    async def go() -> int:
        await load_assets(app)
        return (await app.orchestrator.run()).iterations

    structlog.reset_defaults()  # capture_logs keeps the level filter an earlier CLI test may have set
    with capture_logs() as logs:
        iterations = asyncio.run(go())
    app.close()
    assert iterations == 19  # every session of January 2016 traded
    failed = [e for e in logs if e["event"] == "state_backup_failed"]
    assert len(failed) == iterations  # tried (and failed) once per session, never more
    assert {e["log_level"] for e in failed} == {"warning"}


def test_write_backup_leaves_no_file_when_the_source_is_not_readable(tmp_path: Path) -> None:
    target = tmp_path / "backups" / f"state-{DAY}.db"
    target.parent.mkdir()
    with pytest.raises(sqlite3.Error):
        write_backup(tmp_path / "missing" / "state.db", target)
    assert list(target.parent.iterdir()) == []


def test_state_backup_days_zero_takes_none_and_a_negative_value_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "sim" / "state.db"
    assert state_backups(Settings(data_dir=tmp_path, state_backup_days=0), db) is None
    daily = state_backups(Settings(data_dir=tmp_path, state_backup_days=2, trading_mode="sim"), db)
    assert daily is not None
    assert daily.keep == 2
    with pytest.raises(ConfigError, match="STATE_BACKUP_DAYS"):
        load_settings(broker=False, state_backup_days=-1)
