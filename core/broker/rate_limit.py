"""Client-side rate limiting: stay under Alpaca's per-minute request limits instead of discovering them by 429s.

A token bucket sized so that no 60-second window can hold more than `per_minute` requests: a small burst plus a
steady refill of `(per_minute - burst) / 60` per second. It is thread-safe because the SDK calls it from worker
threads (`asyncio.to_thread`); the clock and the sleep are injected so tests never wait for real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        per_minute: int,
        *,
        burst: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, got {per_minute}")
        self._burst = burst if burst is not None else max(1, per_minute // 20)
        if not 1 <= self._burst <= per_minute:
            raise ValueError(f"burst must be between 1 and {per_minute}, got {self._burst}")
        # burst + rate * 60 <= per_minute keeps every 60 s window under the limit (per_minute == 1 cannot refill
        # without exceeding it, so it gets one token per minute on top of the first).
        refill = per_minute - self._burst if per_minute > self._burst else per_minute
        self._rate = refill / 60.0
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = float(self._burst)
        self._stamp = monotonic()
        self._lock = threading.Lock()
        self.waited_s = 0.0
        self.acquired = 0

    @property
    def per_second(self) -> float:
        return self._rate

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; returns how long this call waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = self._monotonic()
                self._tokens = min(float(self._burst), self._tokens + (now - self._stamp) * self._rate)
                self._stamp = now
                if self._tokens >= 1.0 - 1e-9:  # float residue must not leave a caller spinning
                    self._tokens = max(0.0, self._tokens - 1.0)
                    self.acquired += 1
                    self.waited_s += waited
                    return waited
                pause = (1.0 - self._tokens) / self._rate
                # Sleeping under the lock queues the other callers behind this one, which is the point.
                self._sleep(pause)
                waited += pause
