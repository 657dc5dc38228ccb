"""Soak (`make soak`): protective stops across restarts, kills and broker faults: never an over-sell, never an
unprotected position left.

The real daemon (`tradingd run`, paper, STOP_MODE=fixed) runs as a subprocess against the fake Alpaca server, in the
server's time (see `tests/e2e/kill9.py`), 20 times over two months of real bars. Before each run the fake is told to
fail some requests around stop placement and cancellation: a 503 after it accepted an order (the reply is lost, the
order is not), a connection reset after a cancel went through, a 503 before a cancel; some runs are killed with a real
SIGKILL on the lines where a stop is most at risk (an entry filled but its stop not placed; a stop canceled but the
exit not sent). After all runs: the over-sell invariant held at every moment of the broker's history
(`tests/e2e/oversell.py`), everything of the crash tests' `check_invariants` holds, and every position the daemon
owns at the end has its stop.
"""

from __future__ import annotations

import random
import signal
from datetime import date, timedelta
from pathlib import Path

import pytest

from core.clock import NyseCalendar
from core.order_ids import is_protective_stop_id
from tests.e2e.kill9 import (
    Outcome,
    check_invariants,
    daemon_env,
    run_daemon,
    seed_user_positions,
    stepping_server,
    stop_coverage,
)
from tests.e2e.oversell import oversell_breaches
from tests.fakes.alpaca_server import FakeAlpacaServer, Fault
from tests.fakes.alpaca_tape import MarketTape, largest_symbols, load_tape

pytestmark = pytest.mark.soak

SYMBOLS = tuple(largest_symbols(29))
FIRST, LAST = date(2017, 8, 1), date(2017, 12, 29)  # more sessions than the runs use: the clock never runs out
RESTARTS = 20
FAILPOINTS = ("stops.before_place", "exit.after_cancel", "submit.after_broker")


@pytest.fixture(scope="module")
def tape() -> MarketTape:
    return load_tape(SYMBOLS)


def _inject_faults(server: FakeAlpacaServer, rng: random.Random) -> list[str]:
    injected: list[str] = []
    if rng.random() < 0.5:
        server.inject(Fault.http(503, process=True), "POST", "/v2/orders")
        injected.append("submit accepted then 503")
    if rng.random() < 0.5:
        server.inject(Fault.reset(process=True), "DELETE", "/v2/orders/*")
        injected.append("cancel done then reset")
    if rng.random() < 0.5:
        server.inject(Fault.http(503), "DELETE", "/v2/orders/*")
        injected.append("cancel refused with 503")
    return injected


def test_twenty_restarts_with_faults_never_oversell_and_leave_every_position_protected(
    tape: MarketTape, tmp_path: Path
) -> None:
    rng = random.Random(12)
    calendar = NyseCalendar()
    sessions = calendar.sessions_in_range(FIRST, LAST)
    server = stepping_server(tape, sessions)
    outcome = Outcome()
    with server:
        seed_user_positions(server, SYMBOLS)
        env = daemon_env(server, tmp_path, SYMBOLS) | {"STOP_MODE": "fixed"}
        for cycle in range(RESTARTS):
            _inject_faults(server, rng)
            failpoint = f"{rng.choice(FAILPOINTS)}:{rng.randint(1, 3)}" if cycle % 3 == 0 else None
            rc, err = run_daemon(env, iterations=8, failpoint=failpoint)
            assert rc in (0, -signal.SIGKILL), err[-2000:]
            outcome.record(failpoint.split(":", maxsplit=1)[0] if failpoint else "clean", rc)
            if rng.random() < 0.3:  # dead over the close: stops trigger and DAY stops expire while it is away
                server.set_now(calendar.next_open(server.now) + timedelta(minutes=rng.randint(0, 120)))
        rc, err = run_daemon(env, iterations=4)
        assert rc == 0, err[-2000:]
        outcome.record("final", rc)
        breaches = oversell_breaches(server.events)
        counts = check_invariants(server, tmp_path / "paper" / "state.db")
        stops = [o for o in server.orders.values() if is_protective_stop_id(o.client_order_id)]
        owned, covered = stop_coverage(server)

    assert breaches == [], breaches[:5]
    assert covered == owned, "every owned share is covered once, by its stop or its exit, and nothing else is"
    assert sum(o.status == "filled" for o in stops) >= 1, "the period must see a stop trigger"
    assert outcome.killed >= 3
    print(f"stops restarts: {outcome.runs} runs, {outcome.killed} killed, {len(stops)} stops placed, {counts}")
