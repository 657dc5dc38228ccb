"""A token bucket for the sender: `per_minute` messages a minute, with a burst of as many.

Unlike `core/broker/rate_limit.py` it never sleeps itself: it says how long to wait, so the sender can cut the wait
short at its stop deadline. The clock is injected (tests never wait for real).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, per_minute: int, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, got {per_minute}")
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._monotonic = monotonic
        self._tokens = self._capacity
        self._stamp = monotonic()

    def _refill(self) -> None:
        now = self._monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def delay(self) -> float:
        """Seconds until a token is available (0: now)."""
        self._refill()
        return 0.0 if self._tokens >= 1.0 - 1e-9 else (1.0 - self._tokens) / self._rate

    def take(self) -> None:
        """Spend one token (call after `delay()` said 0)."""
        self._refill()
        self._tokens = max(0.0, self._tokens - 1.0)
