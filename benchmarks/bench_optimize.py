"""`tradingd optimize`'s unit of work: trials per minute on one core.

A trial here is what the command's default window holds: one train replay of 252 sessions and its test replay of the
126 after it (2016-07-01 to 2017-12-29 in the bundled bars), on the sim default universe (the 29 largest stocks, no
scanner: what `tradingd optimize` replays), default stops, the statistics of both replays computed. Trials run one
after the other in this process (one core; `--jobs N` runs N such processes). The first trial is timed apart: it
parses the bundled bars once for the process (`cold_trial_s`); the median of the next ones gives the rate, by the
wall clock and by this process's CPU time (on a shared machine the CPU figure is what one free core would do).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from config.settings import Settings
from core.logging import configure_logging
from tradingd.optimize import base_settings, rolling_windows, sim_sessions
from tradingd.optimize_trial import TrialSpec, run_trial

TRAIN, TEST = 252, 126
ENTRIES = (-2.0, -2.5, -1.5, -2.25)  # one per trial: the first is the cold one


def run(repeats: int = 3) -> dict[str, Any]:
    configure_logging("json", "ERROR")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp), use_scanner=False, log_level="ERROR")
        sessions = sim_sessions(settings)
        end = sessions.index(next(d for d in sessions if d.year == 2018))  # the window ends with 2017
        windows = rolling_windows(sessions[:end], 1, TRAIN, TEST)
        base = base_settings(settings)
        times, cpu_times, trades = [], [], []
        for number, entry in enumerate(ENTRIES[: repeats + 1]):
            t, c = time.perf_counter(), time.process_time()
            result = run_trial(TrialSpec(number, {"ZSCORE_ENTRY": entry}, base, windows))
            times.append(time.perf_counter() - t)
            cpu_times.append(time.process_time() - c)
            trades.append(result.in_sample["trades"])
    warm, warm_cpu = statistics.median(times[1:]), statistics.median(cpu_times[1:])
    return {
        "trial": f"train {TRAIN} + test {TEST} sessions, 29 symbols, {windows[0].train_start}..{windows[0].test_end}",
        "cold_trial_s": round(times[0], 2),
        "trial_median_s": round(warm, 2),
        "trials_per_min_per_core": round(60 / warm, 1),
        "trial_cpu_median_s": round(warm_cpu, 2),
        "trials_per_min_per_core_cpu": round(60 / warm_cpu, 1),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "in_sample_trades": trades,
    }


if __name__ == "__main__":
    print(run(1))
