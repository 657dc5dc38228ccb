"""Secrets never reach any output; the journal is pruned by age; state files are owner-only."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.daemon_lock import acquire_daemon_lock
from core.logging import close_logging, configure_logging
from core.messages import IterationStarted
from core.redact import clear_secrets, redact, register_secrets
from core.store import StateStore
from core.types import BrokerOrder, OrderSide, OrderStatus
from tests.fakes.alpaca_server import FakeAlpacaServer
from tests.fakes.alpaca_tape import largest_symbols, load_tape
from tradingd.cli import app as cli

KEY = "PKTESTSECRETKEY123"
SECRET = "SECRETVALUE987XYZ"


@pytest.fixture
def secrets() -> Iterator[None]:
    register_secrets(KEY, SECRET)
    yield
    clear_secrets()


def _assert_clean(*blobs: bytes | str) -> None:
    for blob in blobs:
        data = blob.encode() if isinstance(blob, str) else blob
        assert KEY.encode() not in data
        assert SECRET.encode() not in data


def test_redact_masks_values_and_stripped_forms() -> None:
    register_secrets(f" {KEY}\n", SECRET)
    try:
        assert redact(f"key={KEY} secret={SECRET}") == "key=*** secret=***"
    finally:
        clear_secrets()
    assert redact(KEY) == KEY  # nothing registered: unchanged


def test_rejection_reason_journal_and_log_never_hold_a_secret(secrets: None, tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "tradingd.log"
    configure_logging("json", "INFO", log_file=log_file)
    now = datetime(2018, 1, 10, tzinfo=UTC)
    with StateStore(tmp_path / "state.db") as store:
        order = BrokerOrder(
            client_order_id="c1",
            broker_order_id="",
            symbol="AAPL",
            side=OrderSide.BUY,
            qty=Decimal(1),
            notional=None,
            status=OrderStatus.REJECTED,
            reason=f"HTTP 422: invalid key {KEY}",
        )
        store.upsert_order(order)
        store.journal([IterationStarted(ts_event=now, ts_init=now, iteration=1, n_symbols=1)])
        import structlog  # noqa: PLC0415

        structlog.get_logger("t").error("iteration_failed", error=f"HTTP 500: {SECRET}")
        stored = store.get_order("c1")
        assert stored is not None
        assert "***" in stored.reason
    close_logging()
    _assert_clean(log_file.read_bytes(), *(p.read_bytes() for p in tmp_path.glob("state.db*")))


@pytest.mark.parametrize("fault", ["keys", "unreachable", "500"])
def test_cli_errors_never_print_the_secret(fault: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tape = load_tape(tuple(largest_symbols(3)))
    with FakeAlpacaServer(tape, key=KEY if fault != "keys" else "other", secret=SECRET) as server:
        url = server.url if fault != "unreachable" else "http://127.0.0.1:9"
        env = {
            "TRADING_MODE": "paper",
            "ALPACA_API_KEY": KEY,
            "ALPACA_SECRET_KEY": SECRET,
            "ALPACA_TRADING_URL": url,
            "ALPACA_DATA_URL": url,
            "ALPACA_STREAM_URL": server.stream_url,
            "DATA_DIR": str(tmp_path / "var"),
            "SYMBOLS": ",".join(largest_symbols(3)),
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)
        if fault == "500":
            from tests.fakes.alpaca_server import Fault  # noqa: PLC0415

            server.inject(Fault.http(500, message=f"boom {SECRET} {KEY}"), "GET", "/v2/account", times=100)
        result = CliRunner().invoke(cli, ["run", "--iterations", "1"])
    clear_secrets()
    assert result.exit_code != 0
    files = [p.read_bytes() for p in (tmp_path / "var").rglob("*") if p.is_file()]
    _assert_clean(result.stdout, result.stderr, *files)


def test_journal_retention_deletes_only_old_rows(tmp_path: Path) -> None:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    old, new = now - timedelta(days=120), now - timedelta(days=10)
    with StateStore(tmp_path / "state.db") as store:
        events = [IterationStarted(ts_event=t, ts_init=t, iteration=i, n_symbols=1) for i, t in enumerate([old] * 5)]
        events += [IterationStarted(ts_event=new, ts_init=new, iteration=9, n_symbols=1)]
        store.journal(events)
        assert store.prune_journal(now - timedelta(days=90), batch=2) == 5
        assert store.summary()["journal"] == 1


def test_state_files_are_owner_only_under_a_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        state_dir = tmp_path / "var" / "paper"
        with StateStore(state_dir / "state.db") as store:
            store.set_flag("x", "1")  # a write: the -wal and -shm exist now
            configure_logging("json", "INFO", log_file=state_dir / "logs" / "tradingd.log")
            import structlog  # noqa: PLC0415

            structlog.get_logger("t").info("hello")
            close_logging()
            lock = acquire_daemon_lock(state_dir, "run")
            lock.release()
            files = [p for p in state_dir.rglob("*") if p.is_file()]
            assert {p.name for p in files} >= {
                "state.db",
                "state.db-wal",
                "state.db-shm",
                "tradingd.log",
                "daemon.lock",
            }
            for path in files:
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            for path in (tmp_path / "var", state_dir, state_dir / "logs"):
                assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
        assert sqlite3.sqlite_version_info >= (3, 0, 0)
    finally:
        os.umask(previous)
