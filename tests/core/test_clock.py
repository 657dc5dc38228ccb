"""Tests for core/clock.py: the clocks and the NYSE calendar (checked against known 2013-2018 sessions)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from freezegun import freeze_time

from core.clock import Clock, LiveClock, NyseCalendar, SimClock
from core.timeconv import NEW_YORK, datetime_to_ns, ns_to_datetime

DATA = Path(__file__).resolve().parents[2] / "data" / "sp500_daily_2013_2018.csv.xz"

THANKSGIVING_2013 = date(2013, 11, 28)
BLACK_FRIDAY_2013 = date(2013, 11, 29)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def ny(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=NEW_YORK)


@pytest.fixture(scope="module")
def cal() -> NyseCalendar:
    # Built outside any freeze_time so the cached exchange calendar never sees a fake "today".
    return NyseCalendar()


# ---- sessions ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "open_utc", "close_utc"),
    [
        pytest.param(date(2013, 6, 14), utc(2013, 6, 14, 13, 30), utc(2013, 6, 14, 20), id="summer-EDT"),
        pytest.param(date(2013, 12, 16), utc(2013, 12, 16, 14, 30), utc(2013, 12, 16, 21), id="winter-EST"),
    ],
)
def test_normal_day_is_930_to_1600_new_york(
    cal: NyseCalendar, day: date, open_utc: datetime, close_utc: datetime
) -> None:
    assert cal.is_trading_day(day)
    assert not cal.is_early_close(day)
    assert cal.session_open(day) == open_utc
    assert cal.session_close(day) == close_utc
    assert cal.session_open(day).tzinfo is UTC
    assert cal.session_open(day).astimezone(NEW_YORK).time().isoformat() == "09:30:00"


def test_thanksgiving_is_a_holiday(cal: NyseCalendar) -> None:
    assert not cal.is_trading_day(THANKSGIVING_2013)
    assert not cal.is_open(ny(2013, 11, 28, 11))
    with pytest.raises(ValueError, match="not an NYSE trading day"):
        cal.session_open(THANKSGIVING_2013)
    with pytest.raises(ValueError, match="not an NYSE trading day"):
        cal.session_close(THANKSGIVING_2013)


def test_day_after_thanksgiving_closes_at_1300(cal: NyseCalendar) -> None:
    assert cal.is_trading_day(BLACK_FRIDAY_2013)
    assert cal.is_early_close(BLACK_FRIDAY_2013)
    assert cal.session_open(BLACK_FRIDAY_2013) == ny(2013, 11, 29, 9, 30)
    assert cal.session_close(BLACK_FRIDAY_2013) == ny(2013, 11, 29, 13)
    assert cal.session_close(BLACK_FRIDAY_2013) == utc(2013, 11, 29, 18)


@pytest.mark.parametrize(
    "day",
    [
        pytest.param(date(2013, 7, 3), id="july-3-2013"),
        pytest.param(date(2014, 7, 3), id="july-3-2014"),
        pytest.param(date(2013, 12, 24), id="christmas-eve-2013"),
        pytest.param(date(2014, 12, 24), id="christmas-eve-2014"),
    ],
)
def test_july_3_and_christmas_eve_close_at_1300(cal: NyseCalendar, day: date) -> None:
    assert cal.is_early_close(day)
    assert cal.session_close(day) == datetime.combine(day, datetime.min.time(), tzinfo=NEW_YORK).replace(hour=13)


def test_july_3_is_a_holiday_when_july_4_falls_on_saturday(cal: NyseCalendar) -> None:
    assert not cal.is_trading_day(date(2015, 7, 3))
    assert not cal.is_early_close(date(2015, 7, 3))


def test_weekend_is_not_a_trading_day(cal: NyseCalendar) -> None:
    assert not cal.is_trading_day(date(2013, 11, 30))
    assert not cal.is_trading_day(date(2013, 12, 1))
    assert not cal.is_open(ny(2013, 11, 30, 12))
    assert cal.next_session(date(2013, 11, 30)) == date(2013, 12, 2)
    assert cal.previous_session(date(2013, 12, 1)) == BLACK_FRIDAY_2013


@pytest.mark.parametrize(
    ("before", "after", "before_open_utc_hour", "after_open_utc_hour"),
    [
        # DST began Sunday 2013-03-10: the open moves from 14:30 to 13:30 UTC.
        pytest.param(date(2013, 3, 8), date(2013, 3, 11), 14, 13, id="spring-forward"),
        # DST ended Sunday 2013-11-03: the open moves from 13:30 to 14:30 UTC.
        pytest.param(date(2013, 11, 1), date(2013, 11, 4), 13, 14, id="fall-back"),
    ],
)
def test_open_stays_930_new_york_across_dst(
    cal: NyseCalendar, before: date, after: date, before_open_utc_hour: int, after_open_utc_hour: int
) -> None:
    assert cal.next_session(before) == after
    assert cal.session_open(before) == datetime.combine(before, datetime.min.time(), tzinfo=UTC).replace(
        hour=before_open_utc_hour, minute=30
    )
    assert cal.session_open(after) == datetime.combine(after, datetime.min.time(), tzinfo=UTC).replace(
        hour=after_open_utc_hour, minute=30
    )
    assert cal.session_close(after) - cal.session_open(after) == timedelta(hours=6, minutes=30)


def test_next_and_previous_session_are_strict_and_skip_holidays(cal: NyseCalendar) -> None:
    assert cal.next_session(date(2013, 11, 27)) == BLACK_FRIDAY_2013
    assert cal.next_session(THANKSGIVING_2013) == BLACK_FRIDAY_2013
    assert cal.previous_session(BLACK_FRIDAY_2013) == date(2013, 11, 27)
    assert cal.previous_session(date(2013, 12, 2)) == BLACK_FRIDAY_2013


def test_sessions_in_range_is_inclusive_and_skips_holidays(cal: NyseCalendar) -> None:
    assert cal.sessions_in_range(date(2013, 11, 25), date(2013, 12, 2)) == [
        date(2013, 11, 25),
        date(2013, 11, 26),
        date(2013, 11, 27),
        date(2013, 11, 29),
        date(2013, 12, 2),
    ]
    assert cal.sessions_in_range(date(2013, 11, 30), date(2013, 12, 1)) == []


def test_sessions_match_the_bundled_market_data(cal: NyseCalendar) -> None:
    dates = sorted({date.fromisoformat(d) for d in pd.read_csv(DATA, usecols=["date"])["date"]})

    assert cal.sessions_in_range(dates[0], dates[-1]) == dates


def test_dates_outside_the_calendar_are_rejected_not_read_as_holidays(cal: NyseCalendar) -> None:
    with pytest.raises(ValueError, match="outside"):
        cal.is_trading_day(date(2009, 12, 31))
    with pytest.raises(ValueError, match="outside"):
        cal.is_trading_day(date(2100, 1, 4))
    assert cal.is_trading_day(date(2010, 1, 4))


def test_datetime_passed_as_a_session_date_is_a_type_error(cal: NyseCalendar) -> None:
    with pytest.raises(TypeError):
        cal.is_trading_day(utc(2013, 6, 14, 15))
    with pytest.raises(TypeError):
        cal.session_close(utc(2013, 6, 14, 15))


# ---- instants ---------------------------------------------------------------------------------------------------


def test_is_open_from_open_inclusive_to_close_exclusive(cal: NyseCalendar) -> None:
    assert not cal.is_open(ny(2013, 6, 14, 9, 29))
    assert cal.is_open(ny(2013, 6, 14, 9, 30))
    assert cal.is_open(ny(2013, 6, 14, 15, 59))
    assert not cal.is_open(ny(2013, 6, 14, 16))
    assert cal.is_open(ny(2013, 11, 29, 12, 59))
    assert not cal.is_open(ny(2013, 11, 29, 13))


def test_naive_instants_are_rejected(cal: NyseCalendar) -> None:
    naive = datetime(2013, 6, 14, 15)
    for call in (cal.is_open, cal.last_completed_session, cal.next_open, cal.next_close, cal.session_date):
        with pytest.raises(ValueError, match="timezone-aware"):
            call(naive)


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        pytest.param(utc(2013, 11, 29, 17, 59), date(2013, 11, 27), id="before-early-close"),
        pytest.param(utc(2013, 11, 29, 18), BLACK_FRIDAY_2013, id="at-early-close"),
        pytest.param(ny(2013, 6, 14, 15, 59), date(2013, 6, 13), id="before-close"),
        pytest.param(ny(2013, 6, 14, 16, 5), date(2013, 6, 14), id="after-close"),
        pytest.param(ny(2013, 12, 1, 12), BLACK_FRIDAY_2013, id="weekend"),
    ],
)
def test_last_completed_session(cal: NyseCalendar, ts: datetime, expected: date) -> None:
    assert cal.last_completed_session(ts) == expected


def test_next_open_and_close(cal: NyseCalendar) -> None:
    # After Friday's early close the next open is Monday's.
    assert cal.next_open(ny(2013, 11, 29, 14)) == ny(2013, 12, 2, 9, 30)
    # Strictly after: at the open itself, the next open is tomorrow's.
    assert cal.next_open(ny(2013, 6, 14, 9, 30)) == ny(2013, 6, 17, 9, 30)
    assert cal.next_close(ny(2013, 11, 29, 10)) == ny(2013, 11, 29, 13)
    assert cal.next_close(ny(2013, 11, 28, 10)) == ny(2013, 11, 29, 13)


def test_session_date_is_the_new_york_date(cal: NyseCalendar) -> None:
    # 03:00 UTC on the 30th is still the evening of the 29th in New York.
    assert cal.session_date(utc(2013, 11, 30, 3)) == BLACK_FRIDAY_2013
    assert cal.session_date(utc(2013, 11, 30, 5)) == date(2013, 11, 30)
    assert cal.session_date(datetime(2013, 11, 29, 22, tzinfo=timezone(timedelta(hours=-5)))) == BLACK_FRIDAY_2013


def test_scan_time_is_five_minutes_after_the_close(cal: NyseCalendar) -> None:
    assert cal.scan_time(date(2013, 6, 14)) == ny(2013, 6, 14, 16, 5)
    assert cal.scan_time(date(2013, 12, 16)) == utc(2013, 12, 16, 21, 5)
    assert cal.scan_time(BLACK_FRIDAY_2013) == ny(2013, 11, 29, 13, 5)
    with pytest.raises(ValueError, match="not an NYSE trading day"):
        cal.scan_time(THANKSGIVING_2013)


def test_daily_bar_ts_is_new_york_midnight(cal: NyseCalendar) -> None:
    assert cal.daily_bar_ts(date(2013, 6, 14)) == utc(2013, 6, 14, 4)
    assert cal.daily_bar_ts(date(2013, 12, 16)) == utc(2013, 12, 16, 5)
    assert cal.daily_bar_ts(date(2013, 12, 16)).tzinfo is UTC
    assert cal.session_date(cal.daily_bar_ts(date(2013, 3, 11))) == date(2013, 3, 11)


def test_a_daily_bar_is_complete_at_its_sessions_close(cal: NyseCalendar) -> None:
    days = [date(2013, 6, 14), BLACK_FRIDAY_2013, date(2013, 12, 16), THANKSGIVING_2013]
    stamps = np.array([datetime_to_ns(cal.daily_bar_ts(d)) for d in days], dtype=np.int64)

    closes = [ns_to_datetime(int(ns)) for ns in cal.daily_bar_closes_ns(stamps)]

    assert closes[:3] == [utc(2013, 6, 14, 20), utc(2013, 11, 29, 18), utc(2013, 12, 16, 21)]  # an early close too
    assert closes[3] == ny(2013, 11, 29)  # no session that day: the bar is complete when the day ends


def test_daily_bar_opens_are_the_sessions_opens_and_a_non_session_keeps_its_stamp(cal: NyseCalendar) -> None:
    days = [date(2013, 6, 14), BLACK_FRIDAY_2013, THANKSGIVING_2013]
    stamps = np.array([datetime_to_ns(cal.daily_bar_ts(d)) for d in days], dtype=np.int64)

    opens = [ns_to_datetime(int(ns)) for ns in cal.daily_bar_opens_ns(stamps)]

    assert opens[:2] == [utc(2013, 6, 14, 13, 30), utc(2013, 11, 29, 14, 30)]  # 09:30 New York, EDT then EST
    assert opens[2] == cal.daily_bar_ts(THANKSGIVING_2013)


def test_calendar_instances_share_one_schedule() -> None:
    a, b = NyseCalendar(), NyseCalendar()

    assert a._s is b._s


# ---- LiveClock --------------------------------------------------------------------------------------------------


def test_live_clock_reads_the_wall_clock_as_utc() -> None:
    with freeze_time("2013-11-29 18:05:00"):
        now = LiveClock().now()

    assert now == utc(2013, 11, 29, 18, 5)
    assert now.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("wall", "due"),
    [
        pytest.param("2013-11-29 18:04:59", False, id="early-close-before-scan"),
        pytest.param("2013-11-29 18:05:00", True, id="early-close-at-scan"),
        pytest.param("2013-06-14 20:04:00", False, id="normal-before-scan"),
        pytest.param("2013-06-14 20:05:00", True, id="normal-at-scan"),
    ],
)
def test_daily_scan_is_due_at_close_plus_five_minutes_on_the_wall_clock(
    cal: NyseCalendar, wall: str, due: bool
) -> None:
    clock: Clock = LiveClock()
    with freeze_time(wall):
        now = clock.now()
        today = cal.session_date(now)

    assert cal.is_trading_day(today)
    assert (now >= cal.scan_time(today)) is due


async def test_live_clock_sleep_zero_returns() -> None:
    await LiveClock().sleep(0)


# ---- SimClock ---------------------------------------------------------------------------------------------------


def test_sim_clock_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SimClock(datetime(2013, 6, 14))
    clock = SimClock(utc(2013, 6, 14))
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2013, 6, 15))


def test_sim_clock_reports_utc_whatever_zone_it_started_in() -> None:
    clock = SimClock(ny(2013, 6, 14, 9, 30))

    assert clock.now() == utc(2013, 6, 14, 13, 30)
    assert clock.now().tzinfo is UTC


def test_sim_clock_set_is_monotonic() -> None:
    clock = SimClock(utc(2013, 6, 14, 14))
    clock.set(utc(2013, 6, 14, 14))
    clock.set(utc(2013, 6, 14, 20))

    with pytest.raises(ValueError, match="backwards"):
        clock.set(utc(2013, 6, 14, 19, 59))
    assert clock.now() == utc(2013, 6, 14, 20)


def test_sim_clock_advance() -> None:
    clock = SimClock(utc(2013, 6, 14, 14))
    clock.advance(90.5)

    assert clock.now() == utc(2013, 6, 14, 14, 1) + timedelta(seconds=30.5)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="non-negative"):
            clock.advance(bad)
    assert clock.now() == utc(2013, 6, 14, 14, 1) + timedelta(seconds=30.5)


async def test_sim_clock_sleep_advances_without_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = SimClock(utc(2013, 6, 14, 14))
    asked: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(seconds: float) -> None:
        asked.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)

    await clock.sleep(86_400)

    assert clock.now() == utc(2013, 6, 15, 14)
    assert asked == [0]  # it only yields to other tasks; it never waits on the event loop's clock


async def test_sim_clock_sleep_with_past_deadline_does_not_move_time() -> None:
    clock = SimClock(utc(2013, 6, 14, 14))
    await clock.sleep(-5)

    assert clock.now() == utc(2013, 6, 14, 14)


async def test_sim_clock_sleep_yields_to_other_tasks() -> None:
    clock = SimClock(utc(2013, 6, 14, 14))
    ran: list[datetime] = []

    async def observer() -> None:
        ran.append(clock.now())

    task = asyncio.create_task(observer())
    await clock.sleep(60)

    assert ran == [utc(2013, 6, 14, 14, 1)]
    await task
