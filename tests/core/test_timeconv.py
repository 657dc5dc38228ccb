"""core/timeconv.py: the vectorised New York conversions agree with pandas' time zone arithmetic (the reference they
replace) at every instant and date, DST changes included, and keep NaT and empty inputs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from core.store.codec import time_text
from core.timeconv import NEW_YORK, ny_dates, ny_midnights


def _pandas_dates(stamps: npt.NDArray[np.int64]) -> npt.NDArray[np.datetime64]:
    index = pd.DatetimeIndex(stamps.view("datetime64[ns]")).tz_localize("UTC").tz_convert(NEW_YORK)
    return index.tz_localize(None).normalize().to_numpy(dtype="datetime64[D]")


def _pandas_midnights(days: npt.NDArray[np.datetime64]) -> npt.NDArray[np.datetime64]:
    index = pd.DatetimeIndex(days.astype("datetime64[ns]")).tz_localize(NEW_YORK).tz_convert("UTC")
    return index.tz_localize(None).as_unit("ns").to_numpy()


def _ns(text: str) -> int:
    return int(np.datetime64(text, "ns").astype(np.int64))


def test_ny_dates_match_pandas_at_random_instants_over_three_centuries() -> None:
    stamps = np.random.default_rng(7).integers(_ns("1890-01-01"), _ns("2190-01-01"), 200_000)
    assert (ny_dates(stamps) == _pandas_dates(stamps)).all()
    assert (ny_dates(stamps.view("datetime64[ns]")) == _pandas_dates(stamps)).all()


def test_ny_dates_match_pandas_every_quarter_hour_across_dst_changes() -> None:
    stamps = np.arange(_ns("2006-01-01"), _ns("2009-01-01"), 15 * 60 * 10**9)  # the 2007 rule change included
    assert (ny_dates(stamps) == _pandas_dates(stamps)).all()


def test_ny_midnights_match_pandas_for_every_day() -> None:
    days = np.arange(np.datetime64("1890-01-01"), np.datetime64("2150-01-01"))
    assert (ny_midnights(days) == _pandas_midnights(days)).all()
    assert (ny_midnights(list(days[:50].tolist())) == _pandas_midnights(days[:50])).all()


@pytest.mark.parametrize("convert", [ny_dates, ny_midnights])
def test_nat_and_empty_inputs_are_kept(
    convert: Callable[[npt.NDArray[np.datetime64]], npt.NDArray[np.datetime64]],
) -> None:
    assert convert(np.array([], dtype="datetime64[ns]")).size == 0
    mixed = convert(np.array(["NaT", "2020-03-08T12:00"], dtype="datetime64[ns]"))
    assert np.isnat(mixed[0])
    assert not np.isnat(mixed[1])
    assert np.isnat(convert(np.array(["NaT"], dtype="datetime64[ns]"))).all()


def test_a_daily_bar_stamp_round_trips() -> None:
    days = np.arange(np.datetime64("2013-01-01"), np.datetime64("2019-01-01"))
    assert (ny_dates(ny_midnights(days)) == days).all()


def test_store_times_are_the_same_text_for_the_same_instant_in_any_zone() -> None:
    moment = datetime(2020, 3, 8, 7, 0, tzinfo=UTC)
    eastern = moment.astimezone(timezone(timedelta(hours=-4)))
    assert time_text(eastern) == time_text(moment) == "2020-03-08T07:00:00.000000+00:00"
    with pytest.raises(ValueError, match="naive"):
        time_text(datetime(2020, 3, 8, 7, 0))


def test_time_text_tells_the_two_instants_of_a_repeated_wall_time_apart() -> None:
    # 01:30 happens twice in New York on 2024-11-03; equal as datetimes (fold is not compared), not as instants.
    first = datetime(2024, 11, 3, 1, 30, tzinfo=NEW_YORK)
    second = first.replace(fold=1)
    assert time_text(first) == "2024-11-03T05:30:00.000000+00:00"
    assert time_text(second) == "2024-11-03T06:30:00.000000+00:00"
