"""Time conversions: the one place instants change representation, and the one New York time zone.

Instants are UTC-aware `datetime`s in the agents and the store, int64 nanoseconds since the epoch in the bar caches
and numpy `datetime64[ns]` (naive, UTC) in bar frames. Daily bars are stamped like Alpaca's: midnight New York time
of their trading date, expressed in UTC. Every conversion is exact (integer arithmetic, no float seconds), so a bar
time survives any round trip and a client order id built from it never changes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

NEW_YORK: Final = ZoneInfo("America/New_York")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_MIDNIGHT: Final = time(0)


def require_aware(moment: datetime, name: str = "ts") -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment!r}")


def datetime_to_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch of a timezone-aware datetime, exactly (no float rounding)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: bar times are UTC, pass an aware datetime")
    return ((moment - _EPOCH) // _MICROSECOND) * 1000


def ns_to_datetime(ns: int) -> datetime:
    """The UTC datetime of epoch nanoseconds (datetime has microseconds: the rest is dropped, towards the past)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def datetime64_to_datetime(stamp: np.datetime64) -> datetime:
    """A bar frame's timestamp (naive datetime64, UTC) as a UTC-aware datetime."""
    return ns_to_datetime(int(stamp.astype("datetime64[ns]").astype(np.int64)))


def ny_date(moment: datetime) -> date:
    """The New York calendar date of an instant (not necessarily a trading session)."""
    require_aware(moment)
    return moment.astimezone(NEW_YORK).date()


def ny_instant(day: date, at: time = _MIDNIGHT) -> datetime:
    """The UTC instant of New York wall time `at` on `day`; at midnight, the stamp of that day's daily bar."""
    return datetime.combine(day, at, tzinfo=NEW_YORK).astimezone(UTC)


def ny_dates(stamps: npt.NDArray[np.datetime64] | npt.NDArray[np.int64]) -> npt.NDArray[np.datetime64]:
    """The New York dates (`datetime64[D]`) of UTC instants given as naive `datetime64[ns]` or epoch nanoseconds."""
    ns = np.asarray(stamps).view("datetime64[ns]").view(np.int64).ravel()
    valid = ns != _NAT
    local = ns + _ny_offsets_ns(ns, valid)
    days = (local // _NS_PER_DAY).astype("datetime64[D]")
    if not valid.all():
        days[~valid] = np.datetime64("NaT")
    return days


def ny_midnights(days: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
    """Daily-bar stamps of many dates: midnight New York of each, in UTC, as naive `datetime64[ns]`."""
    local = np.asarray(days, dtype="datetime64[ns]").view(np.int64).ravel()
    valid = local != _NAT
    # The offset is the one in force at the instant itself: found from a first guess (standard time), then from
    # the instant that guess gives; New York changes its clocks at 02:00, so a midnight is never skipped or doubled.
    guess = local - _ny_offsets_ns(local + _STANDARD_OFFSET_NS, valid)
    utc = local - _ny_offsets_ns(guess, valid)
    out = utc.view("datetime64[ns]").copy()
    if not valid.all():
        out[~valid] = np.datetime64("NaT")
    return out


# Vectorised New York offsets: the zone's rules (from zoneinfo, so exactly what `astimezone` says) turned once per
# year into a table of (UTC instant of a change, offset from then on) that `np.searchsorted` reads for a whole
# array. A scan's window asks this for every bar of every iteration: no pandas, no per-element Python.
_NAT: Final = np.iinfo(np.int64).min
_NS_PER_DAY: Final = 86_400 * 10**9
_STANDARD_OFFSET_NS: Final = 5 * 3600 * 10**9  # EST is UTC-5: a first guess at a wall time's UTC instant


def _ny_offsets_ns(utc_ns: npt.NDArray[np.int64], valid: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """New York's UTC offset (ns, negative) at each instant (epoch ns); 0 where `valid` is False."""
    all_valid = bool(valid.all())
    if utc_ns.size == 0 or not (all_valid or valid.any()):
        return np.zeros_like(utc_ns)
    known = utc_ns if all_valid else utc_ns[valid]
    low, high = int(known.min()), int(known.max())
    starts, offsets, covered_to = _table[0]
    if not (starts[0] <= low and high < covered_to):
        first = ns_to_datetime(low).year - 1
        last = ns_to_datetime(high).year + 1
        starts, offsets = _offset_table(first, last)
        covered_to = datetime_to_ns(datetime(min(last + 1, 9999), 1, 1, tzinfo=UTC))
        _table[0] = (starts, offsets, covered_to)  # the next call (the same window, a session on) reuses it
    if all_valid:
        return offsets[np.searchsorted(starts, utc_ns, side="right") - 1]
    index = np.searchsorted(starts, np.where(valid, utc_ns, starts[0]), side="right") - 1
    return np.where(valid, offsets[index], 0)


# The table last used: (change instants, offsets, the end of the years it covers), epoch ns; one tuple, swapped whole.
_table: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int]] = [
    (np.array([_NAT + 1], dtype=np.int64), np.empty(0, dtype=np.int64), _NAT)
]


@lru_cache(maxsize=64)
def _offset_table(first_year: int, last_year: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    changes = [change for year in range(first_year, last_year + 1) for change in _year_changes(year)]
    starts = np.array([start for start, _ in changes], dtype=np.int64)
    offsets = np.array([offset for _, offset in changes], dtype=np.int64)
    return starts, offsets


@lru_cache(maxsize=512)
def _year_changes(year: int) -> tuple[tuple[int, int], ...]:
    """(UTC epoch ns, offset ns) at the start of `year` and at every change of New York's offset during it."""
    year = min(max(year, 2), 9998)  # datetime's range, with room for the day steps below

    def offset(moment: datetime) -> int:
        delta = moment.astimezone(NEW_YORK).utcoffset()
        assert delta is not None  # a ZoneInfo always has an offset
        return (delta // _MICROSECOND) * 1000

    moment = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    current = offset(moment)
    changes = [(datetime_to_ns(moment), current)]
    day = timedelta(days=1)
    while moment < end:
        following = min(moment + day, end)
        if offset(following) != current:
            # Bisect to the second: the first instant of the new offset (the zone changes on whole seconds).
            low, high = moment, following
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) // 2
                low, high = (low, middle) if offset(middle) != current else (middle, high)
            current = offset(high)
            changes.append((datetime_to_ns(high), current))
        moment = following
    return tuple(changes)
