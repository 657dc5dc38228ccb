"""Harness for kill -9 tests: the real daemon as a subprocess (`tradingd run`) against the fake Alpaca server.

The daemon reads the fake's clock (`TRADINGD_TEST_CLOCK=broker`), and the fake moves that clock on each read
(`clock_step`), so a run depends on what the daemon does, never on how fast the machine is. Kills are real SIGKILLs:
a failpoint (`TRADINGD_FAILPOINT`, see `core/failpoints.py`) kills the process on an exact line, or the soak kills it
from outside at a random moment. After the cycles, `check_invariants` compares the store with the server.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from config.settings import Settings
from core.bars import default_sim_tiers
from core.clock import NyseCalendar
from core.order_ids import is_our_client_order_id
from core.store import StateStore
from core.types import OrderSide
from tests.fakes.alpaca_server import FakeAlpacaServer
from tests.fakes.alpaca_tape import MarketTape

# The hang guard of one daemon run: generous on a loaded 2-core machine; a run normally takes a few seconds.
RUN_TIMEOUT_S = 600
USER_SHARES = Decimal(1)  # the user's own position in every symbol, bought by hand before the daemon starts
LOOP_INTERVAL_S = 7200  # four iterations a session (09:30, 11:30, 13:30, 15:30 ET)


@dataclass
class Outcome:
    """How the runs ended; the counts the closing note reports."""

    runs: int = 0
    killed: int = 0
    clean: int = 0
    endings: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def record(self, how: str, rc: int) -> None:
        self.runs += 1
        self.endings[how] += 1
        if rc == -signal.SIGKILL:
            self.killed += 1
        elif rc == 0:
            self.clean += 1


def daemon_env(server: FakeAlpacaServer, data_dir: Path, symbols: tuple[str, ...]) -> dict[str, str]:
    tiers = default_sim_tiers(Settings().sim_universe_file, set(symbols))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "TRADINGD_"))}
    env.update(
        TRADING_MODE="paper",
        ALPACA_API_KEY=server.key,
        ALPACA_SECRET_KEY=server.secret,
        ALPACA_TRADING_URL=server.url,
        ALPACA_DATA_URL=server.url,
        ALPACA_STREAM_URL=server.stream_url,
        DATA_DIR=str(data_dir),
        USE_SCANNER="false",
        SYMBOLS=",".join(symbols),
        SYMBOL_TIERS=",".join(f"{s}:{t.value}" for s, t in tiers.items()),
        LOOP_INTERVAL_SECONDS=str(LOOP_INTERVAL_S),
        ZSCORE_ENTRY="-1.5",  # trade more often than the default, so a short period holds many orders
        # The fake has no rate limit to respect, and a test has no time to wait for one.
        TRADING_RATE_LIMIT_PER_MIN="1000000",
        DATA_RATE_LIMIT_PER_MIN="1000000",
        LOG_LEVEL="WARNING",
        TRADINGD_TEST_HOOKS="1",
        TRADINGD_TEST_CLOCK="broker",
    )
    return env


def start_daemon(env: dict[str, str], iterations: int, failpoint: str | None = None) -> subprocess.Popen[bytes]:
    run_env = dict(env)
    if failpoint:
        run_env["TRADINGD_FAILPOINT"] = failpoint
    return subprocess.Popen(
        [sys.executable, "-m", "tradingd", "run", "--iterations", str(iterations)],
        env=run_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def run_daemon(env: dict[str, str], iterations: int, failpoint: str | None = None) -> tuple[int, str]:
    proc = start_daemon(env, iterations, failpoint)
    _, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    return proc.returncode, err.decode(errors="replace")


def seed_user_positions(server: FakeAlpacaServer, symbols: tuple[str, ...]) -> None:
    """The user's own shares, bought by hand: the daemon must never sell them."""
    for symbol in symbols:
        server.place_order(
            {
                "symbol": symbol,
                "qty": str(USER_SHARES),
                "side": "buy",
                "type": "market",
                "time_in_force": "day",
                "client_order_id": f"manual-{symbol}",
            }
        )


def _ours(server: FakeAlpacaServer) -> list[Any]:
    return [o for o in server.orders.values() if is_our_client_order_id(o.client_order_id)]


def check_invariants(server: FakeAlpacaServer, state_db: Path) -> dict[str, int]:
    """Everything the server holds of ours is in the store, once; positions agree; no double entry; no user share
    sold. Returns the counts for the report."""
    store = StateStore(state_db)
    try:
        stored = {r.order.client_order_id: r.order for r in store.order_records()}
        fills = store.fills()
    finally:
        store.close()
    ours = _ours(server)
    assert all(not o.client_order_id.startswith("manual-") for o in stored.values()), "a manual order was adopted"

    # 1. Every server order of ours is in the store, in the server's state.
    missing = [o.client_order_id for o in ours if o.client_order_id not in stored]
    assert not missing, f"server orders lost from the store: {missing}"
    for order in ours:
        mine = stored[order.client_order_id]
        assert mine.status.value == order.status, (order.client_order_id, mine.status, order.status)
        assert mine.filled_qty == order.filled_qty, (order.client_order_id, mine.filled_qty, order.filled_qty)

    # 2. Every fill exactly once: per order, the stored fills add up to the server's filled quantity.
    filled: dict[str, Decimal] = defaultdict(Decimal)
    for fill in fills:
        filled[fill.client_order_id] += fill.qty
    lost_or_doubled = {
        o.client_order_id: (filled.get(o.client_order_id, Decimal(0)), o.filled_qty)
        for o in ours
        if filled.get(o.client_order_id, Decimal(0)) != o.filled_qty
    }
    assert not lost_or_doubled, f"fills lost or counted twice (store, server): {lost_or_doubled}"
    assert set(filled) <= {o.client_order_id for o in ours}, "a stored fill the server never made"

    # 3. Positions: the server's, less the user's own shares, equal what our stored fills add up to.
    owned: dict[str, Decimal] = defaultdict(Decimal)
    for fill in fills:
        owned[fill.symbol] += fill.qty if fill.side is OrderSide.BUY else -fill.qty
    for symbol in set(owned) | set(server.positions):
        server_qty = server.positions[symbol].qty if symbol in server.positions else Decimal(0)
        assert server_qty - USER_SHARES == owned.get(symbol, Decimal(0)), (symbol, server_qty, owned.get(symbol))

    # 4. No double entry and no user share sold: per symbol, a filled buy is never followed by another before a sale
    #    (one sale may take several orders: a protective stop's GTC and DAY parts), and a sell never takes more than
    #    the buys before it.
    by_symbol: dict[str, list[Any]] = defaultdict(list)
    for order in sorted((o for o in ours if o.filled_qty > 0), key=lambda o: o.filled_ns):
        by_symbol[order.symbol].append(order)
    for symbol, orders in by_symbol.items():
        sides = [o.side for o in orders]
        assert ("buy", "buy") not in itertools.pairwise(sides), f"double entry in {symbol}: {sides}"
        held = Decimal(0)
        for order in orders:
            held += order.filled_qty if order.side == "buy" else -order.filled_qty
            assert held >= 0, f"{symbol}: sold {-held} of the user's shares"
    return {"server_orders": len(ours), "stored_fills": len(fills), "lost": 0, "duplicates": 0}


def stop_coverage(server: FakeAlpacaServer) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """What the daemon owns per symbol (the server's positions less the user's shares), and what its open sells
    cover: its resting protective stops, or the exit an exit canceled them for (it fills at the fake's next open).
    Equal when every owned share is protected, or on its way out, exactly once."""
    covered: dict[str, Decimal] = defaultdict(Decimal)
    for order in server.orders.values():
        ours = is_our_client_order_id(order.client_order_id)
        if ours and order.side == "sell" and order.status in ("new", "accepted", "partially_filled"):
            covered[order.symbol] += (order.qty or Decimal(0)) - order.filled_qty
    owned = {s: p.qty - USER_SHARES for s, p in server.positions.items() if p.qty > USER_SHARES}
    return owned, dict(covered)


def stepping_server(tape: MarketTape, sessions: list[date]) -> FakeAlpacaServer:
    """The fake for a subprocess daemon: its clock starts before the first session's open, moves 15 minutes at each
    reading and stops at the last session's close."""
    calendar = NyseCalendar()
    server = FakeAlpacaServer(tape, now=calendar.session_open(sessions[0]) - timedelta(minutes=30))
    server.clock_step = timedelta(minutes=15)
    server.clock_until = calendar.session_close(sessions[-1])
    return server
