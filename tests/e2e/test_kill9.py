"""kill -9 on chosen lines, restarts in the same session and after the next open: nothing lost, nothing doubled.

The real daemon runs as a subprocess (`tradingd run`) against the fake Alpaca server, in the server's time; see
`tests/e2e/kill9.py`. `make soak` runs 50 more cycles with random failpoints and random-timer kills.
"""

from __future__ import annotations

import signal
from datetime import date, timedelta
from pathlib import Path

import pytest

from core.clock import NyseCalendar
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
from tests.fakes.alpaca_tape import MarketTape, largest_symbols, load_tape

SYMBOLS = tuple(largest_symbols(29))
FIRST, LAST = date(2017, 8, 1), date(2017, 9, 29)

# (failpoint, jump to the next session's open before the restart): each kill lands on the line it names.
CYCLES: tuple[tuple[str, bool], ...] = (
    ("submit.after_broker:1", False),  # the broker has the order; the store has only its pending row
    ("recovery.after_lookup:1", True),  # ... and the restart dies while recovering it, after the next open
    ("updates.between_fills:2", False),  # one fill of a transaction recorded, the next not; rolled back
    ("submit.before_broker:1", False),  # committed pending, never sent: closed as never_submitted
    ("iteration.committed:6", True),
    ("submit.after_broker:2", True),
    ("stops.before_place:1", False),  # an entry filled and recorded; its protective stop not placed yet
    ("exit.after_cancel:1", True),  # an exit's stop canceled at the broker; the exit not sent yet
)


@pytest.fixture(scope="module")
def tape() -> MarketTape:
    return load_tape(SYMBOLS)


def test_kill9_at_each_failpoint_loses_nothing(tape: MarketTape, tmp_path: Path) -> None:
    calendar = NyseCalendar()
    sessions = calendar.sessions_in_range(FIRST, LAST)
    server = stepping_server(tape, sessions)
    outcome = Outcome()
    with server:
        seed_user_positions(server, SYMBOLS)
        env = daemon_env(server, tmp_path, SYMBOLS)
        for point, next_open in CYCLES:
            rc, err = run_daemon(env, iterations=60, failpoint=point)
            assert rc == -signal.SIGKILL, f"{point} never fired (rc {rc}): {err[-2000:]}"
            outcome.record(point, rc)
            if next_open:  # the daemon stays dead over the close; due orders fill while it is away
                server.set_now(calendar.next_open(server.now) + timedelta(minutes=1))
        rc, err = run_daemon(env, iterations=80)
        assert rc == 0, err[-2000:]
        outcome.record("clean", rc)
        counts = check_invariants(server, tmp_path / "paper" / "state.db")
        owned, covered = stop_coverage(server)
        breaches = oversell_breaches(server.events)
    assert outcome.killed == len(CYCLES)
    assert owned, "the run must end holding positions"
    assert covered == owned, "after the restarts every owned share has its stop (or exit): none missing or orphaned"
    assert breaches == [], breaches[:5]
    assert counts["server_orders"] >= 10, "the period must exercise entries and exits"
    print(f"kill9: {outcome.runs} runs, {outcome.killed} killed, {counts}")
