"""Clocks and the NYSE trading calendar.

Time is injected: agents and the orchestrator take a `Clock` so the same code runs against the wall clock (paper,
live) and a simulated clock (sim, tests). `NyseCalendar` answers session questions from exchange-calendars' "XNYS"
rules; nothing here hand-codes trading hours or holidays.
"""

from __future__ import annotations

import asyncio
import functools
import math
import warnings
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from core.timeconv import datetime_to_ns, ny_date, ny_dates, ny_instant, require_aware

if TYPE_CHECKING:  # pandas, exchange-calendars and numpy load with the calendar, not with the clock (start-up)
    import exchange_calendars as xcals
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

# The bundled replay data starts in 2013; 2010 leaves room for look-back windows before it.
CALENDAR_START = date(2010, 1, 1)

# The daily scan runs shortly after the close so the session's daily bar is final.
SCAN_DELAY = timedelta(minutes=5)


class Clock(Protocol):
    """Source of the current time and of waiting; UTC-aware throughout. The one clock type: every component that
    needs the time takes a `Clock`, even when it only asks `now()`."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class LiveClock:
    """The wall clock; the only place in core/ that reads it."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class SimClock:
    """A clock that only moves when told to, so replays run as fast as the CPU allows and tests are exact."""

    def __init__(self, start: datetime) -> None:
        require_aware(start, "start")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, ts: datetime) -> None:
        require_aware(ts)
        ts = ts.astimezone(UTC)
        if ts < self._now:
            raise ValueError(f"SimClock cannot go backwards: {ts.isoformat()} < {self._now.isoformat()}")
        self._now = ts

    def advance(self, seconds: float) -> None:
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"advance needs a finite, non-negative number of seconds, got {seconds}")
        self._now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        # Like asyncio.sleep, a negative delay (a deadline already passed) means "don't wait".
        self.advance(max(seconds, 0.0))
        # Yield so other tasks run at this instant, as they would during a real sleep.
        await asyncio.sleep(0)


@dataclass(frozen=True, slots=True)
class _Schedule:
    """XNYS sessions as plain Python values, parallel lists sorted by session."""

    sessions: list[date]
    opens: list[datetime]
    closes: list[datetime]
    by_session: dict[date, tuple[datetime, datetime]]
    early_closes: frozenset[date]
    first_day: date
    last_day: date


@functools.cache
def _xnys() -> xcals.ExchangeCalendar:
    # Construction takes most of a second; build it once per process.
    import exchange_calendars as xcals  # noqa: PLC0415 - only a command that needs sessions pays for the import

    with warnings.catch_warnings():
        # exchange-calendars 4.x reads tz-aware Series.values, which pandas 3 deprecates; that is the library's
        # concern and its schedule is unaffected, so keep the warning out of our logs.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray that drops timezone")
        return xcals.get_calendar("XNYS", start=CALENDAR_START)


def _utc(ts: pd.Timestamp) -> datetime:
    # pandas hands back ZoneInfo("UTC"); use datetime.UTC everywhere so comparisons skip offset lookups.
    return ts.to_pydatetime().replace(tzinfo=UTC)


@functools.cache
def _schedule() -> _Schedule:
    cal = _xnys()
    sched = cal.schedule
    sessions = [label.date() for label in sched.index]
    opens = [_utc(ts) for ts in sched["open"]]
    closes = [_utc(ts) for ts in sched["close"]]
    return _Schedule(
        sessions=sessions,
        opens=opens,
        closes=closes,
        by_session=dict(zip(sessions, zip(opens, closes, strict=True), strict=True)),
        early_closes=frozenset(label.date() for label in cal.early_closes),
        first_day=CALENDAR_START,
        last_day=sessions[-1],
    )


class NyseCalendar:
    """NYSE regular sessions. Sessions are `date`s; instants are UTC-aware datetimes.

    Sessions are half-open: the market is open at the open and closed at the close.
    Dates outside the calendar's range raise ValueError rather than silently reading as holidays.
    """

    def __init__(self) -> None:
        self._s = _schedule()

    # ---- sessions -------------------------------------------------------------------------------------------------

    def is_trading_day(self, d: date) -> bool:
        self._check_in_range(d)
        return d in self._s.by_session

    def session_open(self, d: date) -> datetime:
        return self._bounds(d)[0]

    def session_close(self, d: date) -> datetime:
        return self._bounds(d)[1]

    def is_early_close(self, d: date) -> bool:
        self._check_in_range(d)
        return d in self._s.early_closes

    def next_session(self, d: date) -> date:
        self._check_in_range(d)
        i = bisect_right(self._s.sessions, d)
        if i == len(self._s.sessions):
            raise ValueError(f"no session after {d} within the calendar (last {self._s.last_day})")
        return self._s.sessions[i]

    def previous_session(self, d: date) -> date:
        self._check_in_range(d)
        i = bisect_left(self._s.sessions, d) - 1
        if i < 0:
            raise ValueError(f"no session before {d} within the calendar (first {self._s.sessions[0]})")
        return self._s.sessions[i]

    def sessions_in_range(self, start: date, end: date) -> list[date]:
        """Sessions with start <= session <= end."""
        self._check_in_range(start)
        self._check_in_range(end)
        lo = bisect_left(self._s.sessions, start)
        hi = bisect_right(self._s.sessions, end)
        return self._s.sessions[lo:hi]

    # ---- instants -------------------------------------------------------------------------------------------------

    def is_open(self, ts: datetime) -> bool:
        ts = self._to_utc(ts)
        i = bisect_right(self._s.opens, ts) - 1
        return i >= 0 and ts < self._s.closes[i]

    def last_completed_session(self, ts: datetime) -> date:
        """The most recent session whose close is at or before ts."""
        ts = self._to_utc(ts)
        i = bisect_right(self._s.closes, ts) - 1
        if i < 0:
            raise ValueError(f"no session completed by {ts.isoformat()} within the calendar")
        return self._s.sessions[i]

    def next_open(self, ts: datetime) -> datetime:
        """The first session open strictly after ts."""
        return self._first_after(self._s.opens, ts, "open")

    def next_close(self, ts: datetime) -> datetime:
        """The first session close strictly after ts (today's close while the market is open)."""
        return self._first_after(self._s.closes, ts, "close")

    def session_date(self, ts: datetime) -> date:
        """The New York calendar date of ts (not necessarily a session)."""
        return ny_date(ts)

    def scan_time(self, d: date) -> datetime:
        """When the daily scan for session d runs: close + 5 minutes (16:05 ET, 13:05 ET on early closes)."""
        return self.session_close(d) + SCAN_DELAY

    def daily_bar_ts(self, d: date) -> datetime:
        """Alpaca stamps a daily bar at midnight New York time of its date; this is that instant in UTC."""
        return ny_instant(d)

    def daily_bar_closes_ns(self, stamps: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """When each daily bar (stamped `daily_bar_ts`, epoch ns) is complete: its session's close, epoch ns. A bar
        of a day that is no session here completes at the next New York midnight (the end of its day)."""
        import numpy as np  # noqa: PLC0415 - see the imports at the top

        closes = [
            bounds[1] if (bounds := self._s.by_session.get(day)) is not None else ny_instant(day + timedelta(days=1))
            for day in ny_dates(stamps).tolist()
        ]
        return np.array([datetime_to_ns(close) for close in closes], dtype=np.int64)

    def daily_bar_opens_ns(self, stamps: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """When each daily bar's session opens (the time of a fill at its open), epoch ns. A bar of a day that is no
        session here keeps its stamp (midnight New York)."""
        import numpy as np  # noqa: PLC0415 - see the imports at the top

        opens = [
            bounds[0] if (bounds := self._s.by_session.get(day)) is not None else ny_instant(day)
            for day in ny_dates(stamps).tolist()
        ]
        return np.array([datetime_to_ns(opened) for opened in opens], dtype=np.int64)

    # ---- helpers --------------------------------------------------------------------------------------------------

    def _check_in_range(self, d: date) -> None:
        self._check_is_date(d)
        if not self._s.first_day <= d <= self._s.last_day:
            raise ValueError(f"{d} is outside the NYSE calendar range {self._s.first_day}..{self._s.last_day}")

    def _bounds(self, d: date) -> tuple[datetime, datetime]:
        self._check_is_date(d)
        bounds = self._s.by_session.get(d)
        if bounds is None:
            raise ValueError(f"{d} is not an NYSE trading day")
        return bounds

    @staticmethod
    def _check_is_date(d: date) -> None:
        # datetime subclasses date, but a datetime never equals a session date and fails ordering against one.
        if isinstance(d, datetime):
            raise TypeError(f"expected a date, got datetime {d!r}; use session_date() to convert an instant")

    def _to_utc(self, ts: datetime) -> datetime:
        require_aware(ts)
        return ts.astimezone(UTC)

    def _first_after(self, instants: list[datetime], ts: datetime, what: str) -> datetime:
        ts = self._to_utc(ts)
        i = bisect_right(instants, ts)
        if i == len(instants):
            raise ValueError(f"no session {what} after {ts.isoformat()} within the calendar")
        return instants[i]
