"""Test-only failpoints: kill this process with SIGKILL at a named line, on its n-th visit.

A crash test needs kill -9 to land on exactly the lines that matter (after the broker accepted an order, before the
store commit; between two fills of one transaction; in the middle of recovery), every run, whatever the machine's
speed. `TRADINGD_FAILPOINT=<name>:<n>` names the point and the visit; it is honoured only when
`TRADINGD_TEST_HOOKS=1` is set as well, so a stray variable in a trader's environment can never kill the daemon.

The configuration is read once, at import; a disabled failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from typing import Final

HOOKS_VAR: Final = "TRADINGD_TEST_HOOKS"
FAILPOINT_VAR: Final = "TRADINGD_FAILPOINT"
CLOCK_VAR: Final = "TRADINGD_TEST_CLOCK"  # "broker": a paper daemon reads the (fake) broker's clock

# Every failpoint in the code base, so a test (or a typo) naming another one fails loudly instead of never firing.
POINTS: Final = frozenset(
    {
        "submit.before_broker",  # the batch is committed as pending_submit; no broker call made yet
        "submit.after_broker",  # the broker accepted an order; its answer is not stored
        "updates.between_fills",  # inside the transaction that records fills, after one of them
        "recovery.after_lookup",  # start-up recovery looked an order up; nothing of it is stored yet
        "iteration.committed",  # an iteration's closing transaction is committed
        "stops.before_place",  # an entry's fill is recorded; its protective stop is not written or placed yet
        "exit.after_cancel",  # an exit's stops are canceled (confirmed by the broker); the exit is not sent yet
    }
)


def test_hooks_enabled() -> bool:
    return os.environ.get(HOOKS_VAR) == "1"


def broker_clock_requested() -> bool:
    return test_hooks_enabled() and os.environ.get(CLOCK_VAR) == "broker"


def _parse(spec: str) -> dict[str, int]:
    armed: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, visit = part.partition(":")
        if name not in POINTS:
            raise ValueError(f"{FAILPOINT_VAR}: unknown failpoint {name!r} (known: {', '.join(sorted(POINTS))})")
        if not visit.isdigit() or int(visit) < 1:
            raise ValueError(f"{FAILPOINT_VAR}: {part!r} needs a visit number >= 1, as in {name}:1")
        armed[name] = int(visit)
    return armed


_armed: dict[str, int] = _parse(os.environ.get(FAILPOINT_VAR, "")) if test_hooks_enabled() else {}


def failpoint(name: str) -> None:
    """Die here, as kill -9 would, if this visit is the armed one."""
    if not _armed:
        return
    remaining = _armed.get(name)
    if remaining is None:
        return
    if remaining > 1:
        _armed[name] = remaining - 1
        return
    os.kill(os.getpid(), signal.SIGKILL)
