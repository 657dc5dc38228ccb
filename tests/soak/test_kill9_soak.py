"""Soak: 50+ kill -9 cycles of the real daemon against the fake Alpaca server, then every invariant of
`tests/e2e/kill9.py`. Half the kills land on a random failpoint and visit, half at a random moment from outside
(the moment is random on purpose: the assertions hold wherever it lands). Run with `make soak`.
"""

from __future__ import annotations

import random
import signal
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest

from core.clock import NyseCalendar
from core.failpoints import POINTS
from tests.e2e.kill9 import (
    RUN_TIMEOUT_S,
    Outcome,
    check_invariants,
    daemon_env,
    run_daemon,
    seed_user_positions,
    start_daemon,
    stepping_server,
)
from tests.fakes.alpaca_tape import largest_symbols, load_tape

pytestmark = pytest.mark.soak

SYMBOLS = tuple(largest_symbols(29))
FIRST, LAST = date(2017, 1, 3), date(2017, 12, 29)
CYCLES = 50


def _kill_at_random_moment(env: dict[str, str], rng: random.Random) -> int:
    proc = start_daemon(env, iterations=200)
    try:
        proc.wait(timeout=rng.uniform(1.0, 8.0))  # start-up takes ~3 s: some kills land in it, some in the loop
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=RUN_TIMEOUT_S)
    return proc.returncode


def test_fifty_kill9_cycles_lose_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261202)
    calendar = NyseCalendar()
    sessions = calendar.sessions_in_range(FIRST, LAST)
    server = stepping_server(load_tape(SYMBOLS), sessions)
    outcome = Outcome()
    points = sorted(POINTS)
    with server:
        seed_user_positions(server, SYMBOLS)
        env = daemon_env(server, tmp_path, SYMBOLS)
        for cycle in range(CYCLES):
            if cycle % 2:
                rc = _kill_at_random_moment(env, rng)
                outcome.record("timer", rc)
            else:
                point = f"{rng.choice(points)}:{rng.randint(1, 4)}"
                rc, err = run_daemon(env, iterations=40, failpoint=point)
                assert rc in (0, -signal.SIGKILL), err[-2000:]
                outcome.record(point.split(":", maxsplit=1)[0], rc)
            if rng.random() < 0.3:  # dead over the close: due orders fill while it is away
                server.set_now(calendar.next_open(server.now) + timedelta(minutes=rng.randint(0, 120)))
        rc, err = run_daemon(env, iterations=40)
        assert rc == 0, err[-2000:]
        outcome.record("clean", rc)
        counts = check_invariants(server, tmp_path / "paper" / "state.db")
    assert outcome.killed >= CYCLES // 2
    print(f"kill9 soak: {outcome.runs} runs, {outcome.killed} killed, endings {dict(outcome.endings)}, {counts}")
