"""A state DB lost or broken between two runs: the daemon sets it aside, rebuilds what it owns from the broker's
order history, starts in `reducing`, and exits its positions as the same run without the damage does.

Subprocess daemons against the fake Alpaca server, in the server's time (see `tests/e2e/kill9.py`). Each case runs
the same first part; then the state DB is damaged (or not: the reference) and the daemon runs on.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.clock import NyseCalendar
from core.order_ids import is_our_client_order_id
from tests.e2e.kill9 import (
    RUN_TIMEOUT_S,
    daemon_env,
    run_daemon,
    seed_user_positions,
    start_daemon,
)
from tests.fakes.alpaca_server import FakeAlpacaServer
from tests.fakes.alpaca_tape import MarketTape, largest_symbols, load_tape

SYMBOLS = tuple(largest_symbols(29))
FIRST, LAST = date(2017, 8, 1), date(2017, 10, 31)
BEFORE, AFTER = 40, 40  # iterations before and after the damage (4 a session)


def _random_bytes(db: Path) -> None:
    db.write_bytes(os.urandom(db.stat().st_size))


def _truncated(db: Path) -> None:
    with db.open("r+b") as f:
        f.truncate(db.stat().st_size // 2)


def _zeroed(db: Path) -> None:
    db.write_bytes(bytes(db.stat().st_size))


def _dropped_table(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE orders")


def _deleted(db: Path) -> None:
    for path in db.parent.glob(db.name + "*"):
        path.unlink()


DAMAGE: dict[str, Callable[[Path], None]] = {
    "random_bytes": _random_bytes,
    "truncated": _truncated,
    "zeroed": _zeroed,
    "dropped_table": _dropped_table,
    "deleted": _deleted,
}


@pytest.fixture(scope="module")
def tape() -> MarketTape:
    return load_tape(SYMBOLS)


def _run_case(tape: MarketTape, data_dir: Path, damage: Callable[[Path], None] | None) -> dict[str, Any]:
    calendar = NyseCalendar()
    sessions = calendar.sessions_in_range(FIRST, LAST)
    server = FakeAlpacaServer(tape, now=calendar.session_open(sessions[0]) - timedelta(minutes=30))
    server.clock_step = timedelta(minutes=15)
    server.clock_until = calendar.session_close(sessions[-1])
    with server:
        seed_user_positions(server, SYMBOLS)
        env = daemon_env(server, data_dir, SYMBOLS)
        rc, err = run_daemon(env, iterations=BEFORE)
        assert rc == 0, err[-2000:]
        before = set(server.orders)
        held = _ours_held(server)
        if damage is not None:
            damage(data_dir / "paper" / "state.db")
        rc, err = run_daemon(env, iterations=AFTER)
        assert rc == 0, err[-2000:]
        after = [server.orders[i] for i in server.orders if i not in before]
        return {
            "held": held,
            "exits": _first_exits(after, held),
            "buys": [o.client_order_id for o in after if o.side == "buy"],
            "sold_beyond_ours": _sold_beyond_ours(server),
            "log": (data_dir / "paper" / "logs" / "tradingd.log").read_text(),
            "set_aside": sorted(p.name for p in (data_dir / "paper").iterdir() if ".corrupt" in p.name),
        }


def _ours_held(server: FakeAlpacaServer) -> dict[str, Decimal]:
    held: dict[str, Decimal] = {}
    for order in server.orders.values():
        if is_our_client_order_id(order.client_order_id) and order.filled_qty:
            signed = order.filled_qty if order.side == "buy" else -order.filled_qty
            held[order.symbol] = held.get(order.symbol, Decimal(0)) + signed
    return {symbol: qty for symbol, qty in held.items() if qty}


def _first_exits(orders: list[Any], held: dict[str, Decimal]) -> set[tuple[str, Decimal]]:
    """The first sell of each position held at the damage (a later one exits a new entry of the reference run)."""
    first: dict[str, Any] = {}
    for order in sorted(orders, key=lambda o: o.submitted_ns):
        if order.side == "sell" and order.symbol in held:
            first.setdefault(order.symbol, order)
    return {(o.client_order_id, o.filled_qty) for o in first.values()}


def _sold_beyond_ours(server: FakeAlpacaServer) -> dict[str, Decimal]:
    return {symbol: qty for symbol, qty in _ours_held(server).items() if qty < 0}


@pytest.fixture(scope="module")
def reference(tape: MarketTape, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run_case(tape, tmp_path_factory.mktemp("reference"), None)


# Two kinds in `make test` (about half a minute each); all of them in `make soak`.
QUICK = {"random_bytes", "dropped_table"}


@pytest.mark.parametrize(
    "kind", [pytest.param(kind, marks=() if kind in QUICK else pytest.mark.soak) for kind in sorted(DAMAGE)]
)
def test_positions_keep_being_exited_after_the_state_db_is_damaged(
    kind: str, tape: MarketTape, reference: dict[str, Any], tmp_path: Path
) -> None:
    assert reference["held"], "the first part must leave positions to exit"
    assert reference["exits"], "the reference run must exit some of them"
    case = _run_case(tape, tmp_path, DAMAGE[kind])
    assert case["held"] == reference["held"]  # the same first part
    assert case["exits"] == reference["exits"]  # the same exits, by client order id and quantity
    assert case["buys"] == []  # recovery starts in reducing: no new entries until `tradingd resume`
    assert case["sold_beyond_ours"] == {}  # never a share of the user's
    assert '"state_recovery"' in case["log"]
    if kind != "deleted":
        assert case["set_aside"], "the damaged file is set aside, never deleted"


def test_a_second_daemon_on_the_same_state_refuses(tape: MarketTape, tmp_path: Path) -> None:
    calendar = NyseCalendar()
    server = FakeAlpacaServer(tape, now=calendar.session_open(FIRST) - timedelta(minutes=30))
    server.clock_step = timedelta(minutes=15)
    with server:
        env = daemon_env(server, tmp_path, SYMBOLS)
        first = start_daemon({**env, "LOG_LEVEL": "INFO"}, iterations=1_000_000)
        try:
            assert first.stderr is not None
            # The lock is taken before the broker is contacted: once the first daemon logs its account, it holds it.
            for line in iter(first.stderr.readline, b""):
                if b"paper_trading" in line:
                    break
            second = subprocess.run(
                [*first.args[:3], "run", "--once"], env=env, capture_output=True, timeout=RUN_TIMEOUT_S, check=False
            )
            assert second.returncode == 2
            assert b"one daemon per state" in second.stderr
            assert f"pid {first.pid}".encode() in second.stderr
        finally:
            first.kill()
            first.wait(timeout=RUN_TIMEOUT_S)
