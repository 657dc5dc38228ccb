"""Labels: the strategy's own exits, simulated forward as the sim broker fills them."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import SetupError
from core.types import BarFrame
from intelligence.dataset import Dataset
from intelligence.labels import EXIT_STOP, EXIT_STRATEGY, ExitRules, StrategyMarks, embargo_sessions, simulate

NO_SLIP = ExitRules("fixed", 0.05, 0.0)


def frame(opens: list[float], lows: list[float], closes: list[float] | None = None) -> BarFrame:
    n = len(opens)
    o = np.array(opens, dtype=float)[:, None]
    low = np.array(lows, dtype=float)[:, None]
    c = np.array(closes if closes is not None else opens, dtype=float)[:, None]
    return BarFrame(
        symbols=("X",),
        timestamps=np.arange(n).astype("datetime64[D]").astype("datetime64[ns]"),
        open=o,
        high=np.maximum(o, c) + 1.0,
        low=low,
        close=c,
        volume=np.full((n, 1), 1e6),
    )


def marks(n: int, entry_rows: list[int], exit_rows: list[int] = ()) -> StrategyMarks:  # type: ignore[assignment]
    entries = np.zeros((n, 1), dtype=bool)
    exits = np.zeros((n, 1), dtype=bool)
    entries[entry_rows, 0] = True
    exits[list(exit_rows), 0] = True
    return StrategyMarks(entries=entries, exits=exits, score=np.where(entries, 2.5, np.nan))


def test_a_stop_touched_by_the_low_sells_at_its_level() -> None:
    f = frame([100, 100, 99, 99, 99], [99, 97, 94, 98, 98])
    s = simulate(f, marks(5, [0]), NO_SLIP)
    assert (s.entry_row[0], s.exit_row[0], s.exit_kind[0]) == (1, 2, EXIT_STOP)
    assert s.ret[0] == pytest.approx(95 / 100 - 1)
    assert s.win[0] == 0
    assert s.score[0] == 2.5


def test_a_gap_through_the_stop_sells_at_the_open() -> None:
    f = frame([100, 100, 90, 99], [99, 97, 89, 98])
    s = simulate(f, marks(4, [0]), NO_SLIP)
    assert (s.exit_row[0], s.ret[0]) == (2, pytest.approx(-0.10))


def test_the_strategys_exit_at_a_close_sells_at_the_next_open() -> None:
    f = frame([100, 100, 101, 104, 104], [99, 99, 100, 103, 103])
    s = simulate(f, marks(5, [0], exit_rows=[2]), NO_SLIP)
    assert (s.exit_row[0], s.exit_kind[0], s.ret[0]) == (3, EXIT_STRATEGY, pytest.approx(0.04))
    assert s.win[0] == 1
    assert s.holding[0] == 2


def test_slippage_counts_both_ways_and_the_stop_is_rounded_up_to_the_cent() -> None:
    f = frame([100, 100, 99, 99], [99, 97, 95.04, 98])
    s = simulate(f, marks(4, [0]), ExitRules("fixed", 0.05, 5.0))
    entry = 100 * 1.0005  # 100.05: stop at 95.0475, up to 95.05, which a low of 95.04 reaches
    assert s.ret[0] == pytest.approx(95.05 * 0.9995 / entry - 1)


def test_close_mode_sells_at_the_next_open_after_a_close_below_the_stop() -> None:
    f = frame([100, 100, 99, 93, 93], [90, 90, 90, 90, 90], closes=[100, 100, 94, 93, 93])
    s = simulate(f, marks(5, [0]), ExitRules("close", 0.05, 0.0))
    assert (s.exit_row[0], s.exit_kind[0], s.ret[0]) == (3, EXIT_STOP, pytest.approx(-0.07))


def test_a_trade_still_open_at_the_end_has_no_label() -> None:
    f = frame([100, 100, 101, 102], [99, 99, 100, 101])
    assert len(simulate(f, marks(4, [0, 3]), NO_SLIP)) == 0  # row 3: no next open to enter at either


def test_trailing_stops_are_refused_not_mislabelled() -> None:
    with pytest.raises(SetupError, match="STOP_MODE=trailing"):
        ExitRules.of("trailing", 0.05, 5.0)


def test_labels_are_known_only_after_the_entry(dataset: Dataset) -> None:
    s = dataset.samples
    assert (s.entry_row == s.row + 1).all()
    assert (s.exit_row >= s.entry_row).all()
    assert 1 <= embargo_sessions(s) <= 60
