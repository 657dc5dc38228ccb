"""Whole-pipeline sim replay: 505 symbols x 5 years of real bars with risk, orders, fills and the store.

Reports bars/s for the pipeline alone (data loading excluded, measured separately), and iteration latency
(bars in -> orders out) for the 500-symbol universe, as medians.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from config.settings import Settings
from core.logging import configure_logging
from tradingd.app import App, build_sim, load_assets


def _replay(data_dir: Path, latencies: list[float]) -> tuple[App, float]:
    def on_iteration(stats: dict[str, Any]) -> None:
        latencies.append(stats["total_ms"])

    settings = Settings(data_dir=data_dir, use_scanner=False, symbols=("*",), log_level="ERROR")
    app = build_sim(settings, on_iteration=on_iteration)

    async def go() -> float:
        await load_assets(app)
        t = time.perf_counter()
        await app.orchestrator.run()
        return time.perf_counter() - t

    elapsed = asyncio.run(go())
    return app, elapsed


def run(repeats: int = 3) -> dict[str, Any]:
    configure_logging("json", "ERROR")
    rates, elapsed_all, latencies_all = [], [], []
    bars = 0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            latencies: list[float] = []
            app, elapsed = _replay(Path(tmp), latencies)
            bars = app.orchestrator.stats.bars
            app.close()
            rates.append(bars / elapsed)
            elapsed_all.append(elapsed)
            latencies_all.extend(latencies[50:])  # skip warm-up
    latencies_all.sort()
    return {
        "symbols": 505,
        "bars": bars,
        "replay_median_s": round(statistics.median(elapsed_all), 3),
        "replay_bars_per_s": round(statistics.median(rates)),
        "iteration_latency_median_ms": round(statistics.median(latencies_all), 3),
        "iteration_latency_p99_ms": round(latencies_all[int(len(latencies_all) * 0.99)], 3),
        "target": ">= 200k bars/s (619k bars < 3.5 s); iteration < 5 ms for 500 symbols",
    }


if __name__ == "__main__":
    print(run(1))
