"""New York dates and midnights of whole arrays of instants, vectorised with numpy (no pandas, no per-element Python).

Split from `core.timeconv` so the commands that need no arrays (`status`, `halt`, `resume`) never import numpy:
`core.timeconv.ny_dates` / `ny_midnights` import this module on first use.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

from core.timeconv import NEW_YORK, datetime_to_ns, ns_to_datetime


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
_MICROSECOND: Final = timedelta(microseconds=1)
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
