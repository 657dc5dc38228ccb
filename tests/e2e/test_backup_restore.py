"""Back up a paper daemon, trade on, restore the old backup, restart: recovery brings back everything the broker did.

The paper daemon against the fake Alpaca server takes one backup per session. After more sessions, `tradingd
restore <date>` installs an older backup: the orders and fills placed since are missing from it. The next start
reconciles (non-final orders by client id, the closed-orders net for the rest), so every server order and fill is
in the store again, the daemon owns what the server holds, and it starts reducing until `tradingd resume`.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.risk import read_trading_state
from core.clock import NyseCalendar
from core.flags import FLAG_RECOVERY
from core.state_backup import backup_dir, list_backups
from core.state_guard import FLAG_RESTORED
from core.store import StateStore
from core.types import OrderSide, TradingState
from tests.e2e.test_paper_daemon import _paper_app
from tests.fakes.alpaca_server import FakeAlpacaServer
from tests.fakes.alpaca_tape import MarketTape, largest_symbols, load_tape
from tradingd.app import run_app
from tradingd.cli import app as cli

SYMBOLS = tuple(largest_symbols(29))


@pytest.fixture(scope="module")
def tape() -> MarketTape:
    return load_tape(SYMBOLS)


def _owned(store: StateStore) -> dict[str, Decimal]:
    owned: dict[str, Decimal] = defaultdict(Decimal)
    for fill in store.fills():
        owned[fill.symbol] += fill.qty if fill.side is OrderSide.BUY else -fill.qty
    return {symbol: qty for symbol, qty in owned.items() if qty}


def test_restoring_an_old_backup_then_restarting_recovers_every_order_and_fill(
    tape: MarketTape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calendar = NyseCalendar()
    sessions = calendar.sessions_in_range(date(2017, 8, 1), date(2017, 9, 15))
    before, after = sessions[:8], sessions[8:14]  # 6 sessions after: the last backup of `before` is still kept (7)
    data_dir = tmp_path / "var"
    db = data_dir / "paper" / "state.db"
    server = FakeAlpacaServer(tape, now=calendar.session_open(sessions[0]) - timedelta(hours=1))
    with server:
        app = _paper_app(server, data_dir, before)
        asyncio.run(run_app(app))
        app.close()
        backups = list_backups(backup_dir(db))
        assert [b.day for b in backups] == before[-7:]  # one per session, the newest 7 kept
        restored_day = backups[-1].day
        with StateStore(backups[-1].path) as old:
            known = {r.order.client_order_id for r in old.order_records()}

        app = _paper_app(server, data_dir, after)
        asyncio.run(run_app(app))
        app.close()
        assert {b.day for b in list_backups(backup_dir(db))} >= {restored_day, *after}
        server_ids = {o.client_order_id for o in server.orders.values()}
        assert server_ids - known, "the sessions after the backup must place orders the backup lacks"

        monkeypatch.setenv("DATA_DIR", str(data_dir))
        monkeypatch.setenv("LOG_LEVEL", "ERROR")
        result = CliRunner().invoke(cli, ["restore", "--mode", "paper", restored_day.isoformat(), "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert Path(report["set_aside"]).name.startswith("state.db.pre-restore-")
        with StateStore(db) as restored:
            assert {r.order.client_order_id for r in restored.order_records()} == known

        server.set_now(calendar.session_close(after[-1]))  # everything submitted has filled by now
        app = _paper_app(server, data_dir, [])
        asyncio.run(run_app(app))  # start-up recovery only
        state = read_trading_state(app.store)
        orders = {r.order.client_order_id: r.order for r in app.store.order_records()}
        fills = app.store.fills()
        owned = _owned(app.store)
        recovery = app.store.get_flag(FLAG_RECOVERY)
        marker = app.store.get_flag(FLAG_RESTORED)
        app.close()
        server_orders = list(server.orders.values())
        server_held = {symbol: p.qty for symbol, p in server.positions.items() if p.qty}

    assert set(orders) == {o.client_order_id for o in server_orders}  # every server order is in the store
    for wire in server_orders:
        assert sum(f.qty for f in fills if f.client_order_id == wire.client_order_id) == wire.filled_qty
        assert orders[wire.client_order_id].status.value == wire.status
    assert owned == server_held
    assert state.state is TradingState.REDUCING
    assert recovery is not None
    assert restored_day.isoformat() in recovery
    assert marker is None  # consumed by the start it was meant for
