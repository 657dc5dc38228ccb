"""Event bus throughput and hand-off latency of `publish` (the bus's only path: inline, synchronous), next to
baselines measured in the same run.

Baselines: a plain dict-of-handlers dispatch (the floor for a typed bus) and an asyncio.Queue hand-off (what a
queued, asynchronous bus would cost per message).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from core.bus import EventBus
from core.messages import IterationStarted

N = 200_000
T0 = datetime(2017, 1, 3, tzinfo=UTC)


def _messages(n: int) -> list[IterationStarted]:
    return [IterationStarted(ts_event=T0, ts_init=T0, iteration=i, n_symbols=0) for i in range(n)]


def bench_bus_sync(msgs: list[IterationStarted]) -> float:
    bus = EventBus()
    count = 0

    def handler(_: IterationStarted) -> None:
        nonlocal count
        count += 1

    bus.subscribe(IterationStarted, handler)
    t = time.perf_counter()
    for m in msgs:
        bus.publish(m)
    elapsed = time.perf_counter() - t
    assert count == len(msgs)
    return len(msgs) / elapsed


def bench_dict_baseline(msgs: list[IterationStarted]) -> float:
    handlers: dict[type, list[Any]] = {}
    count = 0

    def handler(_: IterationStarted) -> None:
        nonlocal count
        count += 1

    handlers.setdefault(IterationStarted, []).append(handler)
    t = time.perf_counter()
    for m in msgs:
        for h in handlers.get(type(m), ()):
            h(m)
    return len(msgs) / (time.perf_counter() - t)


async def _queue_baseline(msgs: list[IterationStarted]) -> float:
    queue: asyncio.Queue[IterationStarted] = asyncio.Queue(maxsize=10_000)
    done = asyncio.Event()
    count = 0

    async def consumer() -> None:
        nonlocal count
        while True:
            await queue.get()
            count += 1
            if count == len(msgs):
                done.set()

    task = asyncio.create_task(consumer())
    t = time.perf_counter()
    for m in msgs:
        await queue.put(m)
    await done.wait()
    elapsed = time.perf_counter() - t
    task.cancel()
    return len(msgs) / elapsed


def bench_latency(msgs: list[IterationStarted]) -> tuple[float, float]:
    """Publish→handler hand-off time per message (ns resolution), median and p99 in microseconds."""
    bus = EventBus()
    samples: list[int] = []
    sent = 0

    def handler(_: IterationStarted) -> None:
        samples.append(time.perf_counter_ns() - sent)

    bus.subscribe(IterationStarted, handler)
    for m in msgs[:50_000]:
        sent = time.perf_counter_ns()
        bus.publish(m)
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(len(samples) * 0.99)] / 1000


def run() -> dict[str, Any]:
    msgs = _messages(N)
    bus_rates = [bench_bus_sync(msgs) for _ in range(5)]
    dict_rates = [bench_dict_baseline(msgs) for _ in range(5)]
    queue_rates = [asyncio.run(_queue_baseline(msgs)) for _ in range(3)]
    median_us, p99_us = bench_latency(msgs)
    bus_rate = statistics.median(bus_rates)
    return {
        "bus_msgs_per_s": round(bus_rate),
        "dict_dispatch_baseline_msgs_per_s": round(statistics.median(dict_rates)),
        "asyncio_queue_baseline_msgs_per_s": round(statistics.median(queue_rates)),
        "bus_vs_asyncio_queue": round(bus_rate / statistics.median(queue_rates), 2),
        "bus_vs_dict_dispatch": round(bus_rate / statistics.median(dict_rates), 2),
        "handoff_median_us": round(median_us, 3),
        "handoff_p99_us": round(p99_us, 3),
        "target": ">= 1,000,000 msgs/s, p99 < 50 us",
    }


if __name__ == "__main__":
    print(run())
