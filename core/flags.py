"""`FlagStore`: the named string flags that outlive the process (kill switch, breakers, recovery, last scan date,
intraday scores, close requests).

The state store's `flags` table implements it (`core/store/flags.py`, through `StateStore`),
`core/state_guard.py::GuardedFlags` mirrors the safety flags into the kill-switch file, and tests use an in-memory
one (`tests/fakes/flags.py`). Every component that reads or writes a flag takes this one protocol, even when it only
reads.
"""

from __future__ import annotations

from typing import Protocol

# The trading-state conditions (`agents/risk.py::read_trading_state` derives the state from them). Their names live
# here, beside the protocol, because the kill-switch file and restore (`core/state_guard.py`, `core/state_restore.py`)
# write them too, and core sits below the agents.
FLAG_HALTED = "halted"
FLAG_DAILY_LOSS = "breaker_daily_loss"
FLAG_DRAWDOWN = "breaker_drawdown"
FLAG_REDUCE_ONLY = "reduce_only"  # `tradingd halt --reduce-only`: the value is the operator's reason
FLAG_RECOVERY = "recovery"  # the state DB was lost, set aside or restored: the value says which
# The peak drawdown is measured from since the last resume (an equity amount). Without it, resuming after a drawdown
# trip would re-trip at once, since equity is still below the all-time peak.
FLAG_DRAWDOWN_PEAK = "drawdown_peak"
# Exit requests (`tradingd close`, a breaker's flatten; `core/close_requests.py`): one flag per target, so the CLI and
# the daemon, two processes, each write only their own request's row.
CLOSE_REQUEST_PREFIX = "close_request:"


class FlagStore(Protocol):
    def get_flag(self, name: str) -> str | None: ...

    def set_flag(self, name: str, value: str) -> None: ...

    def clear_flag(self, name: str) -> None: ...

    def flags_with_prefix(self, prefix: str) -> dict[str, str]:
        """Every flag whose name starts with `prefix`, by name."""
        ...
