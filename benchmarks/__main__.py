"""`make bench`: every benchmark, one JSON line each, medians next to baselines measured in the same run."""

from __future__ import annotations

import importlib
import json
import sys
import time

BENCHMARKS = (
    "bench_bus",
    "bench_micro",
    "bench_replay",
    "bench_memory",
    "bench_scan",
    "bench_scan_e2e",
    "bench_scan_run",
    "bench_api_calls",
    "bench_startup",
    "bench_report",
    "bench_dashboard",
    "bench_metrics",
    "bench_optimize",
    "bench_ml",
    "bench_notify",
    "bench_ml_live",
)


def main(names: list[str]) -> int:
    for name in names or BENCHMARKS:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as error:
            print(json.dumps({"benchmark": name, "skipped": str(error)}))
            continue
        t = time.perf_counter()
        result = module.run()
        result = {"benchmark": name, **result, "wall_s": round(time.perf_counter() - t, 2)}
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
