"""The client-side rate limiter keeps every 60-second window under the per-minute limit."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from core.broker.rate_limit import RateLimiter
from tests.core.broker.conftest import FakeTime


@pytest.mark.parametrize("per_minute", [200, 60, 7])
def test_no_sixty_second_window_exceeds_the_limit(per_minute: int) -> None:
    fake = FakeTime()
    limiter = RateLimiter(per_minute, monotonic=fake.monotonic, sleep=fake.sleep)

    stamps = []
    for _ in range(per_minute * 5):
        limiter.acquire()
        stamps.append(fake.t)

    times = np.array(stamps)
    in_window = np.searchsorted(times, times + 60.0, side="left") - np.arange(len(times))
    assert in_window.max() <= per_minute
    assert times[-1] < 5 * 60 + 60  # and it does not crawl: about the allowed pace


def test_a_burst_goes_through_without_waiting() -> None:
    fake = FakeTime()
    limiter = RateLimiter(200, monotonic=fake.monotonic, sleep=fake.sleep)

    waits = [limiter.acquire() for _ in range(10)]

    assert waits == [0.0] * 10
    assert limiter.acquire() > 0  # the 11th waits for a refill
    assert limiter.waited_s == pytest.approx(sum(fake.sleeps))


def test_concurrent_callers_are_all_served() -> None:
    limiter = RateLimiter(100_000)  # real clock, but generous: nobody sleeps long
    done = []

    def worker() -> None:
        for _ in range(50):
            limiter.acquire()
        done.append(1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(done) == 4
    assert limiter.acquired == 200


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="per_minute"):
        RateLimiter(0)
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(10, burst=11)
