"""`FlagStore`: the named string flags that outlive the process (kill switch, breakers, recovery, last scan date,
intraday scores).

The state store's `flags` table implements it (`core/store/flags.py`, through `StateStore`),
`core/state_guard.py::GuardedFlags` mirrors the safety flags into the kill-switch file, and tests use an in-memory
one (`tests/fakes/flags.py`). Every component that reads or writes a flag takes this one protocol, even when it only
reads.
"""

from __future__ import annotations

from typing import Protocol


class FlagStore(Protocol):
    def get_flag(self, name: str) -> str | None: ...

    def set_flag(self, name: str, value: str) -> None: ...

    def clear_flag(self, name: str) -> None: ...
