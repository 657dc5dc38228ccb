"""The one bar-sanity stage: the same rules and reason codes for a frame (DataAgent) and a wire series (Alpaca)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from core.bar_sanity import (
    PASSED,
    REASONS,
    UNREADABLE_TIME,
    count_failures,
    frame_failures,
    series_failures,
)
from core.bars import load_daily_bars
from core.timeconv import datetime_to_ns
from core.types import BarFrame
from tests.conftest import DATA_FILE

DAY = np.datetime64("2017-06-05T04:00", "ns")
NOW = datetime(2017, 6, 5, 21, tzinfo=UTC)
NAN = float("nan")

# (open, high, low, close, volume) → the reason the bar fails first, or None when it passes.
CASES = [
    ((495.0, 498.0, 490.0, 495.0, 100.0), None),
    ((NAN, 498.0, 490.0, 495.0, 100.0), "missing_price"),
    ((495.0, np.inf, 490.0, 495.0, 100.0), "missing_price"),  # no real bar carries an infinite price
    ((495.0, 498.0, 490.0, 495.0, NAN), "missing_volume"),
    ((0.0, 498.0, 490.0, 495.0, 100.0), "non_positive_price"),
    ((495.0, 480.0, 490.0, 485.0, 100.0), "high_below_low"),
    ((1e6, 480.0, 490.0, 485.0, 100.0), "high_below_low"),  # and the open outside: the first reason wins
    ((1e6, 498.0, 490.0, 495.0, 100.0), "ohlc_inconsistent"),  # the open that once filled a sell at 999,500
    ((495.0, 498.0, 490.0, 489.0, 100.0), "ohlc_inconsistent"),  # close below low
    ((489.0, 498.0, 490.0, 495.0, 100.0), "ohlc_inconsistent"),  # open below low
    ((495.0, 498.0, 490.0, 498.5, 100.0), "ohlc_inconsistent"),  # close above high
    ((490.0, 498.0, 490.0, 498.0, 100.0), None),  # on the bounds
    ((498.0 * (1 + 1e-12), 498.0, 490.0, 490.0 * (1 - 1e-12), 100.0), None),  # float noise on the bounds
    ((495.0, 498.0, 490.0, 495.0, -5.0), "negative_volume"),
]


def _frame(*bars: tuple[float, ...], day: np.datetime64 = DAY) -> BarFrame:
    columns = np.array(bars, dtype=np.float64).T[:, None, :]  # (field, 1 row, symbol)
    o, h, low, c, v = columns
    return BarFrame(
        symbols=tuple(f"S{i}" for i in range(len(bars))),
        timestamps=np.array([day]),
        open=o,
        high=h,
        low=low,
        close=c,
        volume=v,
    )


def _code(reason: str | None) -> int:
    return PASSED if reason is None else REASONS.index(reason)


@pytest.mark.parametrize(("bar", "reason"), CASES)
def test_a_frame_and_a_series_judge_a_bar_alike(bar: tuple[float, ...], reason: str | None) -> None:
    assert frame_failures(_frame(bar), NOW).tolist() == [[_code(reason)]]
    series = series_failures(np.array([DAY.astype(np.int64)]), np.array([bar]), datetime_to_ns(NOW))
    assert series.tolist() == [_code(reason)]


def test_an_absent_bar_passes_in_a_frame_but_a_received_empty_bar_is_missing() -> None:
    empty = (NAN, NAN, NAN, NAN, NAN)
    assert frame_failures(_frame(empty), NOW).tolist() == [[PASSED]]  # the symbol has no bar that day
    assert series_failures(np.array([DAY.astype(np.int64)]), np.array([empty]), datetime_to_ns(NOW)).tolist() == [
        REASONS.index("missing_price")
    ]


def test_a_bar_from_the_future_fails_in_both_shapes() -> None:
    later = np.datetime64("2017-06-06T04:00", "ns")
    good = (495.0, 498.0, 490.0, 495.0, 100.0)
    assert frame_failures(_frame(good, day=later), NOW).tolist() == [[REASONS.index("future_timestamp")]]
    assert series_failures(np.array([later.astype(np.int64)]), np.array([good]), datetime_to_ns(NOW)).tolist() == [
        REASONS.index("future_timestamp")
    ]


def test_a_series_bar_must_follow_every_earlier_good_bar() -> None:
    good = (495.0, 498.0, 490.0, 495.0, 100.0)
    bad = (1e6, 480.0, 490.0, 485.0, 100.0)
    day = int(np.timedelta64(1, "D").astype("timedelta64[ns]").astype(np.int64))
    t0 = int(DAY.astype(np.int64)) - 5 * day
    t = np.array([t0 + 2 * day, t0 + 3 * day, t0 + day, UNREADABLE_TIME, t0 + 4 * day], dtype=np.int64)
    codes = series_failures(t, np.array([good, bad, good, good, good]), datetime_to_ns(NOW))
    # The dropped bar (high below low) does not count as "earlier"; a repeat of an older time or an unreadable one
    # is out of order.
    assert [REASONS[c] if c != PASSED else None for c in codes] == [
        None,
        "high_below_low",
        "out_of_order",
        "out_of_order",
        None,
    ]
    assert count_failures(codes) == {"high_below_low": 1, "out_of_order": 2}


def test_bundled_data_has_the_bad_rows_the_readme_quotes() -> None:
    # README "Data": 11 rows with empty open/high/low, 11 with the open or close outside their range, 1 high < low.
    codes = frame_failures(load_daily_bars(DATA_FILE), datetime(2018, 3, 1, tzinfo=UTC))
    assert count_failures(codes) == {"missing_price": 11, "high_below_low": 1, "ohlc_inconsistent": 11}
