"""Tests for tradingd/app.py: the sim reset (a new replay starts from an empty state DB, never from an empty logs dir)
and the set-up checks `run` and `validate` share."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from config.settings import Settings
from core.bars import load_daily_bars
from core.broker.sim import _Holding
from core.flags import FLAG_HALTED
from core.store import StateStore
from core.types import BarFrame, bar_price
from tradingd.app import SetupError, build_sim, check_setup, check_sim_setup, reset_sim_state

D = Decimal


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
        assert fresh.summary()["flags"] == {}


def test_the_sim_broker_is_built_knowing_when_each_bar_completes(tmp_path: Path) -> None:
    """The replay starts at its first session's open: that session's bar has started, its close is hours away."""
    settings = Settings(data_dir=tmp_path, use_scanner=False, symbols=("AAPL",), log_level="ERROR")
    app = build_sim(settings, start=date(2016, 1, 5), end=date(2016, 1, 8))
    app.broker._holdings["AAPL"] = _Holding(qty=D(1), avg_entry_price=D(100))  # type: ignore[attr-defined]

    (position,) = asyncio.run(app.broker.get_positions()).values()

    bars = load_daily_bars(settings.sim_data_file, ["AAPL"], date(2016, 1, 4), date(2016, 1, 5))
    assert position.market_price == bar_price(bars.close[0, 0])  # 2016-01-04's close, not 2016-01-05's
    assert bars.close[1, 0] != bars.close[0, 0]
    app.close()


def test_sim_setup_returns_what_build_sim_needs(small_history: BarFrame) -> None:
    settings = Settings(trading_mode="sim", symbols=("AAPL", "MSFT"), use_scanner=False)
    setup = check_sim_setup(settings, load=lambda _: small_history)
    assert setup.history is small_history
    assert set(setup.tiers) == {"AAPL", "MSFT"}
    assert setup.sessions[0].isoformat() == "2013-02-08"


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"bar_timeframe": "1Min"}, "BAR_TIMEFRAME=1Min"),
        ({"symbols": ("NOPE",), "use_scanner": False}, "SYMBOLS: none of NOPE"),
        ({"sim_data_file": Path("missing.csv.xz")}, "SIM_DATA_FILE"),
    ],
)
def test_check_setup_refuses_what_run_refuses(small_history: BarFrame, values: dict[str, object], needle: str) -> None:
    with pytest.raises(SetupError, match=needle):
        check_setup(Settings(trading_mode="sim", **values), load=lambda _: small_history)


def test_the_scan_universe_is_checked_only_when_the_scanner_runs(small_history: BarFrame, tmp_path: Path) -> None:
    universe = tmp_path / "u.txt"
    universe.write_text("NOPE\nZZZZ\n")
    off = Settings(trading_mode="sim", symbols=("AAPL",), use_scanner=False, scan_universe=universe)
    check_sim_setup(off, load=lambda _: small_history)  # unused: not a reason to refuse the run
    on = Settings(trading_mode="sim", symbols=("AAPL",), use_scanner=True, scan_universe=universe)
    with pytest.raises(SetupError, match=r"SCAN_UNIVERSE: .*none of its 2 symbols is in the bundled data"):
        check_sim_setup(on, load=lambda _: small_history)


def test_paper_setup_checks_the_scan_universe_without_the_broker(tmp_path: Path) -> None:
    universe = tmp_path / "u.csv"
    universe.write_text("%%%;garbage\n12345\n")
    keys = {"alpaca_api_key": "k", "alpaca_secret_key": "s", "use_scanner": True}
    with pytest.raises(SetupError, match=r"SCAN_UNIVERSE: .*none of its 2 symbols is a symbol the scan takes"):
        check_setup(Settings(trading_mode="paper", scan_universe=universe, **keys))
    universe.write_text("NOPE\nZZZZ\n")  # well-formed: only the broker could say they do not exist
    check_setup(Settings(trading_mode="paper", scan_universe=universe, **keys))
    check_setup(Settings(trading_mode="paper", **keys))  # the broker's own list: nothing to check up front
