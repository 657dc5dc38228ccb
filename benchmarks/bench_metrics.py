"""What the Prometheus metrics cost: the whole sim replay (505 symbols x 5 years) with `attach_metrics` and without,
interleaved in one run (the order alternating each round), as ratios of medians of the wall time and of the CPU time
(the process's: on a machine shared with other work the wall time moves with the load, the CPU time much less);
the same cost measured without the rest of the replay around it (every event of one replay, recorded, delivered again
to a bus with the metrics observing and to one without: the added work itself, which the load of a shared machine
moves far less than a whole replay's time); and one scrape (`metrics_text`: the live counters plus the state DB's
gauges read through a read-only connection) of the replay's final state, as a median.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_replay import timed_replay
from config.settings import Settings
from core.bus import EventBus
from core.logging import configure_logging
from core.messages import Message
from tradingd.app import build_sim
from tradingd.metrics import DaemonMetrics, attach_metrics, metrics_text

SCRAPES = 50
REDELIVERIES = 5


def _recorded_events() -> tuple[list[Message], list[dict[str, Any]]]:
    """Every event and iteration callback of one replay, in order."""
    events: list[Message] = []
    iterations: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), use_scanner=False, symbols=("*",), log_level="ERROR")
        app = build_sim(settings, on_iteration=iterations.append)
        app.orchestrator.bus.tap(events.append)
        timed_replay(app)
        app.close()
    return events, iterations


def _redelivery_ms(events: list[Message], iterations: list[dict[str, Any]], with_metrics: bool) -> float:
    bus = EventBus()
    metrics = DaemonMetrics() if with_metrics else None
    if metrics is not None:
        metrics.observe(bus)
    t = time.process_time()
    for event in events:
        bus.publish(event)
    if metrics is not None:
        for stats in iterations:
            metrics.on_iteration(stats)
    return (time.process_time() - t) * 1000


def _replay(with_metrics: bool) -> tuple[float, float, float | None, int]:
    """One replay's wall and CPU seconds; with metrics, also the median scrape in ms of its final state and the
    body's size."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), use_scanner=False, symbols=("*",), log_level="ERROR")
        app = build_sim(settings)
        metrics: DaemonMetrics | None = attach_metrics(app) if with_metrics else None
        cpu = time.process_time()
        elapsed = timed_replay(app)
        cpu = time.process_time() - cpu
        scrape_ms: float | None = None
        size = 0
        if metrics is not None:
            times = []
            for _ in range(SCRAPES):
                t = time.perf_counter()
                body, _ = metrics_text(app.store.path, metrics)
                times.append((time.perf_counter() - t) * 1000)
            scrape_ms, size = statistics.median(times), len(body)
        app.close()
        return elapsed, cpu, scrape_ms, size


def run(repeats: int = 3) -> dict[str, Any]:
    configure_logging("json", "ERROR")
    wall: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    scrapes: list[float] = []
    size = 0
    for round_ in range(repeats):  # interleaved: a machine that gets busier during the run weighs on both alike
        for with_metrics in (False, True) if round_ % 2 == 0 else (True, False):
            elapsed, cpu_s, scrape_ms, body_size = _replay(with_metrics)
            wall[with_metrics].append(elapsed)
            cpu[with_metrics].append(cpu_s)
            if scrape_ms is not None:
                scrapes.append(scrape_ms)
                size = body_size
    events, iterations = _recorded_events()
    bare = [_redelivery_ms(events, iterations, False) for _ in range(REDELIVERIES)]
    observed = [_redelivery_ms(events, iterations, True) for _ in range(REDELIVERIES)]
    added_ms = statistics.median(observed) - statistics.median(bare)
    off_s, on_s = statistics.median(wall[False]), statistics.median(wall[True])
    off_cpu, on_cpu = statistics.median(cpu[False]), statistics.median(cpu[True])
    return {
        "symbols": 505,
        "repeats": repeats,
        "replay_metrics_off_median_s": round(off_s, 3),
        "replay_metrics_on_median_s": round(on_s, 3),
        "metrics_on_vs_off_ratio": round(on_s / off_s, 3),
        "replay_metrics_off_cpu_median_s": round(off_cpu, 3),
        "replay_metrics_on_cpu_median_s": round(on_cpu, 3),
        "metrics_on_vs_off_cpu_ratio": round(on_cpu / off_cpu, 3),
        "events_per_replay": len(events),
        "metrics_handlers_cpu_ms_per_replay": round(added_ms, 1),
        "metrics_handlers_vs_replay_cpu_pct": round(added_ms / 1000 / off_cpu * 100, 2),
        "replay_wall_s": {"off": [round(x, 2) for x in wall[False]], "on": [round(x, 2) for x in wall[True]]},
        "replay_cpu_s": {"off": [round(x, 2) for x in cpu[False]], "on": [round(x, 2) for x in cpu[True]]},
        "scrape_median_ms": round(statistics.median(scrapes), 3),
        "scrape_body_bytes": size,
    }
