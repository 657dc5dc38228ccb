"""Samples and labels: one sample per entry signal of the strategy, labelled by its own exits simulated forward.

Every entry signal counts, not only the ones risk approved (that would teach the model what the sizer liked). The
signals are the strategy's own: `Strategy.signals` on each bar's window of `lookback + 1` rows (what the DataAgent
hands the ScannerAgent), with nothing held, on bars cleaned by the DataAgent's rules (`core/bar_sanity.py`: a bad bar
is blanked, never repaired). A signal on bar t is a trade simulated as the sim broker (`core/broker/sim.py`) and the
default pipeline would make it:

- entry: a market buy at the open of bar t + 1, plus `SIM_SLIPPAGE_BPS`; no tradable open there: no trade, no sample;
- `STOP_MODE=fixed` (the default): a sell stop at entry × (1 − `STOP_LOSS_PCT`), rounded up to the cent, watching
  every bar from the entry bar on (placed at that open by the protect tick): it fills at the open when a bar opens at
  or below it, else at its level when the bar's low reaches it, less the slippage;
- `STOP_MODE=close`: the ScannerAgent's close-based stop instead: a close at or below that level sells at the next
  open, less the slippage;
- the strategy's exit: `Strategy.signals` with the symbol held (its exit mask on the bar's window) at a close sells at
  the next open, less the slippage (a next bar without a tradable open: the next one that has it);
- a trade still open at the end of the data has no label yet and is left out.

`STOP_MODE=trailing` is not simulated (its high-water marks are not modelled here): `ExitRules.of` refuses it.

Return = exit / entry − 1 after slippage both ways; win = return > 0. The label is known at the exit's fill bar
(`exit_row`), and only then: training cut-offs are on it (`intelligence/walk_forward.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from agents.strategies.base import BoolArray, Holdings, Strategy
from core.bar_sanity import PASSED, frame_failures
from core.errors import SetupError
from core.types import BarFrame, FloatArray

IntArray = npt.NDArray[np.intp]
StopMode = Literal["fixed", "close"]
EXIT_STRATEGY: Final = 0
EXIT_STOP: Final = 1
_FAR_FUTURE = datetime(2200, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ExitRules:
    """What closes a simulated trade: the stop (`STOP_MODE`, `STOP_LOSS_PCT`) and the sim's slippage, in bps."""

    stop_mode: StopMode = "fixed"
    stop_loss_pct: float = 0.05
    slippage_bps: float = 5.0

    @classmethod
    def of(cls, stop_mode: str, stop_loss_pct: float, slippage_bps: float) -> ExitRules:
        if stop_mode not in ("fixed", "close"):
            raise SetupError(
                f"STOP_MODE={stop_mode}: the ML labels simulate fixed and close stops only (trailing is not modelled)"
            )
        return cls(stop_mode, stop_loss_pct, slippage_bps)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, float | str]:
        return {"stop_mode": self.stop_mode, "stop_loss_pct": self.stop_loss_pct, "slippage_bps": self.slippage_bps}


@dataclass(frozen=True, slots=True)
class Samples:
    """Labelled entry signals, in (signal row, column) order; one element per sample in every array."""

    row: IntArray  # the signal's bar (features are as of its close)
    col: IntArray
    score: FloatArray  # the strategy's own score of the signal (the baseline predictor)
    entry_row: IntArray
    exit_row: IntArray  # the bar of the exit's fill: when the label becomes known
    ret: FloatArray  # exit / entry − 1, after slippage
    exit_kind: npt.NDArray[np.int8]  # EXIT_STRATEGY or EXIT_STOP

    @property
    def win(self) -> npt.NDArray[np.int64]:
        return (self.ret > 0).astype(np.int64)

    @property
    def holding(self) -> IntArray:
        """Sessions from the entry fill to the exit fill."""
        held: IntArray = self.exit_row - self.entry_row
        return held

    def __len__(self) -> int:
        return int(self.row.size)

    def take(self, index: IntArray | BoolArray) -> Samples:
        return Samples(
            row=self.row[index],
            col=self.col[index],
            score=self.score[index],
            entry_row=self.entry_row[index],
            exit_row=self.exit_row[index],
            ret=self.ret[index],
            exit_kind=self.exit_kind[index],
        )


def cleaned(history: BarFrame) -> BarFrame:
    """The bars as the DataAgent would pass them on: a bar breaking a sanity rule blanked (all fields NaN)."""
    bad = frame_failures(history, _FAR_FUTURE) != PASSED
    if not bad.any():
        return history

    def blank(values: FloatArray) -> FloatArray:
        return np.where(bad, np.nan, values)

    return BarFrame(
        symbols=history.symbols,
        timestamps=history.timestamps,
        open=blank(history.open),
        high=blank(history.high),
        low=blank(history.low),
        close=blank(history.close),
        volume=blank(history.volume),
    )


def _window(frame: BarFrame, start: int, stop: int) -> BarFrame:
    return BarFrame(
        symbols=frame.symbols,
        timestamps=frame.timestamps[start:stop],
        open=frame.open[start:stop],
        high=frame.high[start:stop],
        low=frame.low[start:stop],
        close=frame.close[start:stop],
        volume=frame.volume[start:stop],
    )


@dataclass(frozen=True, slots=True)
class StrategyMarks:
    """Per bar and column: the strategy's entry signal, its score, and whether it would exit a holding."""

    entries: BoolArray
    exits: BoolArray
    score: FloatArray


def strategy_marks(strategy: Strategy, frame: BarFrame) -> StrategyMarks:
    """The strategy's answer on every bar's window (one call per bar, vectorised over the columns, as the
    ScannerAgent calls it): entries with nothing held, exits with everything held (the average entry price unknown:
    NaN; neither built-in reads it)."""
    shape = (frame.n_rows, frame.n_symbols)
    entries = np.zeros(shape, dtype=bool)
    exits = np.zeros(shape, dtype=bool)
    score = np.full(shape, np.nan)
    nothing = Holdings(held=np.zeros(frame.n_symbols, dtype=bool), avg_entry_price=np.full(frame.n_symbols, np.nan))
    everything = Holdings(held=np.ones(frame.n_symbols, dtype=bool), avg_entry_price=np.full(frame.n_symbols, np.nan))
    rows = strategy.lookback + 1
    for t in range(strategy.lookback - 1, frame.n_rows):
        window = _window(frame, max(0, t + 1 - rows), t + 1)
        valid = np.isfinite(frame.close[t])  # no decision on a missing bar (the ScannerAgent's rule)
        opened = strategy.signals(window, nothing)
        entries[t] = np.asarray(opened.entries, dtype=bool) & valid
        score[t] = np.asarray(opened.score, dtype=np.float64)
        exits[t] = np.asarray(strategy.signals(window, everything).exits, dtype=bool) & valid
    return StrategyMarks(entries=entries, exits=exits, score=score)


def _stop_level(entry: FloatArray, pct: float) -> FloatArray:
    # `order_shape.round_stop_price`: up to the cent (a level never below what was computed); 1e-9 absorbs float noise.
    level: FloatArray = np.ceil(entry * (1.0 - pct) * 100.0 - 1e-9) / 100.0
    return level


def simulate(frame: BarFrame, marks: StrategyMarks, rules: ExitRules) -> Samples:
    """Every entry signal of `marks` traded forward on `frame` by `rules`; the trades still open at the end left out.

    Vectorised over the samples: one step per session held, all open trades at once.
    """
    rows, cols = np.nonzero(marks.entries)
    order = np.lexsort((cols, rows))
    rows, cols = rows[order].astype(np.intp), cols[order].astype(np.intp)
    n_rows = frame.n_rows
    buy, sell = 1.0 + rules.slippage_bps / 10_000, 1.0 - rules.slippage_bps / 10_000
    entry_row = rows + 1
    has_entry = entry_row < n_rows
    entry_open = np.full(rows.size, np.nan)
    entry_open[has_entry] = frame.open[entry_row[has_entry], cols[has_entry]]
    traded = np.isfinite(entry_open) & (entry_open > 0)
    rows, cols, entry_row, entry_open = rows[traded], cols[traded], entry_row[traded], entry_open[traded]
    entry = entry_open * buy
    stop = _stop_level(entry, rules.stop_loss_pct)

    n = rows.size
    exit_row = np.full(n, -1, dtype=np.intp)
    exit_price = np.full(n, np.nan)
    exit_kind = np.zeros(n, dtype=np.int8)
    pending = np.zeros(n, dtype=bool)  # an exit signalled at a close, to fill at the next tradable open
    open_ = np.arange(n)
    step = 0
    while open_.size:
        bar = entry_row[open_] + step
        inside = bar < n_rows
        open_, bar = open_[inside], bar[inside]  # still open at the end of the data: no label
        if not open_.size:
            break
        c = cols[open_]
        o, low, close = frame.open[bar, c], frame.low[bar, c], frame.close[bar, c]
        with np.errstate(invalid="ignore"):
            tradable_open = np.isfinite(o) & (o > 0)
            by_signal = pending[open_] & tradable_open
            done = by_signal.copy()
            price = np.where(by_signal, o * sell, np.nan)
            kind = np.zeros(open_.size, dtype=np.int8)
            if rules.stop_mode == "fixed":
                level = stop[open_]
                gap = ~done & tradable_open & (o <= level)
                touch = ~done & ~gap & np.isfinite(low) & (low <= level)
                price = np.where(gap, o * sell, np.where(touch, level * sell, price))
                kind = np.where(gap | touch, EXIT_STOP, kind).astype(np.int8)
                done |= gap | touch
                signalled = ~done & marks.exits[bar, c]
            else:
                stopped = ~done & np.isfinite(close) & (close <= entry[open_] * (1.0 - rules.stop_loss_pct))
                signalled = ~done & (marks.exits[bar, c] | stopped)
                kind = np.where(stopped, EXIT_STOP, kind).astype(np.int8)
        finished = open_[done]
        exit_row[finished] = bar[done]
        exit_price[finished] = price[done]
        exit_kind[finished] = np.where(by_signal[done], exit_kind[finished], kind[done])
        # Close mode: the reason is the close's (stop or strategy), remembered until the fill.
        newly = open_[signalled]
        exit_kind[newly] = kind[signalled]
        pending[newly] = True
        open_ = open_[~done]
        step += 1
    labelled = exit_row >= 0
    ret = exit_price / entry - 1.0
    return Samples(
        row=rows[labelled],
        col=cols[labelled],
        score=marks.score[rows[labelled], cols[labelled]],
        entry_row=entry_row[labelled],
        exit_row=exit_row[labelled],
        ret=ret[labelled],
        exit_kind=exit_kind[labelled],
    )


def embargo_sessions(samples: Samples, cap: int = 60) -> int:
    """The longest holding period of the samples, in sessions, capped at `cap` (at least 1)."""
    longest = int(samples.holding.max()) if len(samples) else 1
    return max(1, min(longest, cap))
