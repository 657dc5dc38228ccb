"""What a strategy is: a pure function of one bar frame and what is held, vectorised over every symbol.

A strategy sees the same numpy `BarFrame` the ScannerAgent receives on `BarsFetched` (rows oldest first, one column
per focus symbol, NaN where no valid bar) and a read-only `Holdings` view, and answers with boolean entry and exit
masks and a score per column. It publishes nothing, keeps no clock and does no I/O: the ScannerAgent turns its answer
into `SignalGenerated` events; the stop-loss (`STOP_LOSS_PCT`, `STOP_MODE`) is risk policy, not strategy: stop orders
at the broker (`agents/stops.py`), or with `STOP_MODE=close` the ScannerAgent's close-based exit.

Parameters are a frozen dataclass whose fields are declared with `param()` (default and description), so the registry
can list them (`tradingd strategies`) and build them from settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from core.types import BarFrame, FloatArray, Position

BoolArray = npt.NDArray[np.bool_]
T = TypeVar("T")


def param(default: T, description: str, *, setting: str | None = None) -> T:
    """A strategy parameter: its default and a one-line description.

    `setting` names the dedicated environment variable a built-in reads it from (e.g. `ZSCORE_WINDOW`); parameters
    without one (every plug-in's) are set through `STRATEGY_PARAMS=name=value,...`.
    """
    metadata = {"description": description, "setting": setting}
    return field(default=default, metadata=metadata)


def _readonly(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, slots=True)
class Holdings:
    """What the daemon holds, aligned with the frame's columns: a strategy reads it, never changes it."""

    held: BoolArray
    avg_entry_price: FloatArray  # NaN where nothing is held

    @classmethod
    def of(cls, columns: Mapping[str, int], n_symbols: int, positions: Mapping[str, Position]) -> Holdings:
        """From the portfolio's positions (few) onto the frame's columns (many): the loop is over the few."""
        held = np.zeros(n_symbols, dtype=bool)
        avg = np.full(n_symbols, np.nan)
        for symbol, position in positions.items():
            col = columns.get(symbol)
            if col is None or position.qty <= 0:
                continue
            held[col] = True
            avg[col] = float(position.avg_entry_price)
        return cls(held=_readonly(held), avg_entry_price=_readonly(avg))


@dataclass(frozen=True, slots=True)
class Signals:
    """A strategy's answer for one frame, one element per column.

    `entries` and `exits` are boolean masks; `score` ranks entries (higher is stronger: risk funds the best first and
    `ALLOCATION_METHOD=score_vol` weights by it; NaN reads as 0); `reasons` says why, for the columns that signal
    (optional: a column without one gets the strategy's tag as its reason).
    """

    entries: BoolArray
    exits: BoolArray
    score: FloatArray
    reasons: Mapping[int, str] = field(default_factory=dict)


@runtime_checkable
class Strategy(Protocol):
    """One trading rule over every focus symbol at once (numpy over the columns, no Python loop per symbol)."""

    @property
    def lookback(self) -> int:
        """The rows of bars a decision needs; a shorter frame (warm-up) gets no signal at all."""
        ...

    def signals(self, frame: BarFrame, holdings: Holdings) -> Signals:
        """Entries (for columns not held) and exits (for held columns) on the frame's last row."""
        ...


@runtime_checkable
class RanksEntries(Protocol):
    """Optional: a strategy that can score how close each symbol is to one of its entries.

    The daily scan ranks its candidates by this score, so it must be at least 0 exactly where `signals` would enter
    (on empty holdings) and below 0 elsewhere: a symbol the strategy could not enter never outranks one it could.
    """

    @property
    def lookback(self) -> int: ...

    def entry_score(self, frame: BarFrame) -> FloatArray:
        """Higher is a stronger entry; NaN where the frame has not enough data."""
        ...
