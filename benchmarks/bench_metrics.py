"""What the Prometheus metrics cost: the whole sim replay (505 symbols x 5 years) with `attach_metrics` and without,
interleaved in one run, as a ratio of medians; and one scrape (`metrics_text`: the live counters plus the state DB's
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
from core.logging import configure_logging
from tradingd.app import build_sim
from tradingd.metrics import DaemonMetrics, attach_metrics, metrics_text

SCRAPES = 50


def _replay(with_metrics: bool) -> tuple[float, float | None, int]:
    """One replay's seconds; with metrics, also the median scrape in ms of its final state and the body's size."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), use_scanner=False, symbols=("*",), log_level="ERROR")
        app = build_sim(settings)
        metrics: DaemonMetrics | None = attach_metrics(app) if with_metrics else None
        elapsed = timed_replay(app)
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
        return elapsed, scrape_ms, size


def run(repeats: int = 3) -> dict[str, Any]:
    configure_logging("json", "ERROR")
    off: list[float] = []
    on: list[float] = []
    scrapes: list[float] = []
    size = 0
    for _ in range(repeats):  # interleaved: a machine that gets busier during the run weighs on both alike
        off.append(_replay(False)[0])
        elapsed, scrape_ms, size = _replay(True)
        on.append(elapsed)
        if scrape_ms is not None:
            scrapes.append(scrape_ms)
    off_s, on_s = statistics.median(off), statistics.median(on)
    return {
        "symbols": 505,
        "repeats": repeats,
        "replay_metrics_off_median_s": round(off_s, 3),
        "replay_metrics_on_median_s": round(on_s, 3),
        "metrics_on_vs_off_ratio": round(on_s / off_s, 3),
        "scrape_median_ms": round(statistics.median(scrapes), 3),
        "scrape_body_bytes": size,
    }
