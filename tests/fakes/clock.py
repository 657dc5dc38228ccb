"""A settable clock for tests: `now()` returns whatever the test last `set()`."""

from __future__ import annotations

from datetime import datetime


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self._now = self._checked(now)

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        self._now = self._checked(now)

    @staticmethod
    def _checked(now: datetime) -> datetime:
        if now.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware datetime")
        return now
