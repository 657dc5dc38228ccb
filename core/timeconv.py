"""Time conversions: the one place instants change representation, and the one New York time zone.

Instants are UTC-aware `datetime`s in the agents and the store, int64 nanoseconds since the epoch in the bar caches
and numpy `datetime64[ns]` (naive, UTC) in bar frames. Daily bars are stamped like Alpaca's: midnight New York time
of their trading date, expressed in UTC. Every conversion is exact (integer arithmetic, no float seconds), so a bar
time survives any round trip and a client order id built from it never changes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # numpy is imported by the functions of arrays: `tradingd status` loads this module, not numpy
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
    return ns_to_datetime(int(stamp.astype("datetime64[ns]").astype("int64")))


def ny_date(moment: datetime) -> date:
    """The New York calendar date of an instant (not necessarily a trading session)."""
    require_aware(moment)
    return moment.astimezone(NEW_YORK).date()


def ny_instant(day: date, at: time = _MIDNIGHT) -> datetime:
    """The UTC instant of New York wall time `at` on `day`; at midnight, the stamp of that day's daily bar."""
    return datetime.combine(day, at, tzinfo=NEW_YORK).astimezone(UTC)


def ny_dates(stamps: npt.NDArray[np.datetime64] | npt.NDArray[np.int64]) -> npt.NDArray[np.datetime64]:
    """The New York dates (`datetime64[D]`) of UTC instants given as naive `datetime64[ns]` or epoch nanoseconds."""
    from core import ny_offsets  # noqa: PLC0415 - numpy on first use: `status`, `halt` and `resume` never need it

    return ny_offsets.ny_dates(stamps)


def ny_midnights(days: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
    """Daily-bar stamps of many dates: midnight New York of each, in UTC, as naive `datetime64[ns]`."""
    from core import ny_offsets  # noqa: PLC0415 - imported on first use, like `ny_dates`

    return ny_offsets.ny_midnights(days)
