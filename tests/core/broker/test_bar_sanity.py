from collections import Counter
from typing import Any

import numpy as np
import pytest

from core.broker.bar_sanity import REASONS, clean_bars

NOW_NS = int(np.datetime64("2018-03-01T00:00", "ns").astype(np.int64))


def _bar(day: int, o: float, h: float, low: float, c: float) -> dict[str, Any]:
    return {"t": f"2018-02-{day:02d}T05:00:00Z", "o": o, "h": h, "l": low, "c": c, "v": 1000.0}


@pytest.mark.parametrize(
    ("o", "c"),
    [(1e6, 495.0), (489.0, 495.0), (495.0, 498.5), (495.0, 489.0)],
    ids=["open_above_high", "open_below_low", "close_above_high", "close_below_low"],
)
def test_open_or_close_outside_the_range_is_dropped_and_counted(o: float, c: float) -> None:
    rejected: Counter[str] = Counter()
    bars = clean_bars([_bar(1, 495.0, 498.0, 490.0, 495.0), _bar(2, o, 498.0, 490.0, c)], NOW_NS, rejected)
    assert rejected == Counter({"ohlc_inconsistent": 1})
    assert len(bars) == 1
    assert bars.values[0, 0] == 495.0


def test_float_noise_on_the_bounds_passes() -> None:
    rejected: Counter[str] = Counter()
    bars = clean_bars([_bar(1, 498.0 * (1 + 1e-12), 498.0, 490.0, 490.0 * (1 - 1e-12))], NOW_NS, rejected)
    assert rejected == Counter()
    assert len(bars) == 1


def test_each_bar_counts_under_its_first_reason_only() -> None:
    rejected: Counter[str] = Counter()
    # High below low *and* the open outside: high_below_low comes first. A later bar that repeats an old
    # timestamp is still out_of_order (its code moved when ohlc_inconsistent was added).
    raw = [_bar(2, 495.0, 498.0, 490.0, 495.0), _bar(3, 1e6, 480.0, 490.0, 485.0), _bar(1, 495.0, 498.0, 490.0, 495.0)]
    clean_bars(raw, NOW_NS, rejected)
    assert rejected == Counter({"high_below_low": 1, "out_of_order": 1})
    assert REASONS.index("ohlc_inconsistent") < REASONS.index("out_of_order")
