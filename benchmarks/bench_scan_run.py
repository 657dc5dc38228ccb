"""The default run as the user runs it (sim, scanner on) and the daily scan job inside it, before and after.

Three measurements, in one run:

- `make_run`: `tradingd run` as a subprocess in a temporary DATA_DIR with the sim defaults (scanner on, 1,259
  sessions), twice (the first writes the parsed-bars cache): the second's process wall time (the first's beside
  it); from its JSON log, the median iteration (`iteration.total_ms`), the median scan
  job (`daily_scan_written.job_ms`: volume refresh + scan + candidates.json) and the median of the two added for each
  scanned session (an iteration with the scan).
- `scan_job`: the daily scan job alone, in process, over the last `SESSIONS` bundled sessions with the 505 bundled
  symbols, two ways side by side on the same replay clock: `sqlite` (the path before, still paper/live's: a
  cache-first SQLite refresh, the scan reading the SQLite cache, candidates.json fsynced) and `incremental` (the
  replay's rolling window); per-session medians, the ratio, and whether both picked the same candidates every session.
- `tradingd_scan`: `tradingd scan --json` on the 505 bundled symbols, twice in a fresh DATA_DIR (the first builds the
  volume cache): the scan's own `elapsed_ms` and `compute_ms` and the process wall of each.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from agents.daily_scan import DailyScanner
from config.settings import Settings
from core.broker.replay import ReplayMarketData
from core.clock import NyseCalendar, SimClock
from core.logging import configure_logging
from core.rolling_volumes import RollingVolumes
from core.store import StateStore
from core.timeconv import ny_dates
from core.universe import FileUniverse
from core.volume_cache import VolumeCache
from tradingd.configs import scan_config, select_strategy
from tradingd.scan_runtime import bundled_history
from tradingd.scan_schedule import DailyScanJob, ScanSchedule

SESSIONS = 120
TRADINGD = [sys.executable, "-m", "tradingd"]


def _env(data_dir: Path) -> dict[str, str]:
    # The defaults, whatever the caller's shell says: only where to write and where the candidates go.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")}
    env.update(DATA_DIR=str(data_dir), CANDIDATES_FILE=str(data_dir / "candidates.json"))
    return env


def _log_events(path: Path, names: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    events: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    with path.open() as handle:
        for line in handle:
            if any(f'"{name}"' in line for name in names):
                record = json.loads(line)
                if record.get("event") in events:
                    events[record["event"]].append(record)
    return events


def make_run() -> dict[str, Any]:
    """Two runs in one DATA_DIR: the first parses the bundled CSV and writes the parsed-bars cache, the second (the
    figures) starts from it, as every run after the first does."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "var"
        walls = []
        for _ in range(2):
            shutil.rmtree(data_dir / "sim" / "logs", ignore_errors=True)  # the figures: the second run's log alone
            t = time.perf_counter()
            done = subprocess.run(
                [*TRADINGD, "run"], env=_env(data_dir), capture_output=True, text=True, check=False, cwd=tmp
            )
            walls.append(time.perf_counter() - t)
            if done.returncode != 0:
                return {"error": f"tradingd run exited {done.returncode}: {done.stderr.strip()[-300:]}"}
        events = _log_events(data_dir / "sim" / "logs" / "tradingd.log", ("iteration", "daily_scan_written"))
    iterations = events["iteration"]
    scans = {record["session"]: record["job_ms"] for record in events["daily_scan_written"]}
    with_scan = [r["total_ms"] + scans[r["session"]] for r in iterations if r["session"] in scans]
    return {
        "wall_s": round(walls[1], 2),
        "wall_s_first_run": round(walls[0], 2),
        "iterations": len(iterations),
        "scans": len(scans),
        "iteration_median_ms": round(statistics.median(r["total_ms"] for r in iterations), 3),
        "scan_job_median_ms": round(statistics.median(scans.values()), 3),
        "iteration_with_scan_median_ms": round(statistics.median(with_scan), 3),
        "target": "< 8 s in all; iteration with the scan < 5 ms median",
    }


async def _scan_jobs(sessions: int) -> dict[str, Any]:
    settings = Settings()
    history = bundled_history(settings.sim_data_file)
    calendar = NyseCalendar()
    days = [date.fromisoformat(str(day)) for day in ny_dates(history.timestamps[-sessions:])]
    clock = SimClock(calendar.scan_time(days[0]))
    market = ReplayMarketData(history, clock)
    strategy = select_strategy(settings)
    config = scan_config(settings)
    universe = FileUniverse(settings.sim_universe_file)
    times: dict[str, list[float]] = {"sqlite": [], "incremental": []}
    picks: dict[str, list[list[str]]] = {"sqlite": [], "incremental": []}
    with tempfile.TemporaryDirectory() as tmp:
        jobs: dict[str, DailyScanJob] = {}
        for kind in times:
            folder = Path(tmp) / kind
            folder.mkdir()
            cache = VolumeCache(folder / "volume_cache.db")
            rolling = RollingVolumes() if kind == "incremental" else None
            jobs[kind] = DailyScanJob(
                schedule=ScanSchedule(calendar, StateStore(folder / "state.db")),
                scanner=DailyScanner(market, rolling or cache, calendar, config, strategy=strategy),
                universe=universe,
                cache=cache,
                market_data=market,
                calendar=calendar,
                candidates_path=folder / "candidates.json",
                warmup=True,
                rolling=rolling,
                last_session=days[-1],
            )
        for session in days:
            clock.set(calendar.scan_time(session))
            for kind, job in jobs.items():
                t = time.perf_counter()
                outcome = await job.run(clock.now())
                times[kind].append((time.perf_counter() - t) * 1000)
                picks[kind].append([c.symbol for c in outcome.result.candidates] if outcome else [])
    sqlite_ms = statistics.median(times["sqlite"][1:])  # the first session builds each from nothing
    incremental_ms = statistics.median(times["incremental"][1:])
    return {
        "sessions": len(days),
        "symbols": 505,
        "sqlite_median_ms": round(sqlite_ms, 3),
        "incremental_median_ms": round(incremental_ms, 3),
        "speedup": round(sqlite_ms / incremental_ms, 2),
        "same_candidates_every_session": picks["sqlite"] == picks["incremental"],
    }


def tradingd_scan() -> dict[str, Any]:
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(Path(tmp) / "var")
        for _ in range(2):
            t = time.perf_counter()
            done = subprocess.run(
                [*TRADINGD, "scan", "--json"], env=env, capture_output=True, text=True, check=False, cwd=tmp
            )
            wall = time.perf_counter() - t
            if done.returncode != 0:
                return {"error": f"tradingd scan exited {done.returncode}: {done.stderr.strip()[-300:]}"}
            stats = json.loads(done.stdout)["stats"]
            runs.append(
                {
                    "elapsed_ms": stats["elapsed_ms"],
                    "compute_ms": stats["compute_ms"],
                    "stages_ms": {s["name"]: s["ms"] for s in stats["stages"]},
                    "process_wall_s": round(wall, 2),
                }
            )
    return {"first_builds_the_cache": runs[0], "second": runs[1], "target": "< 10 ms elapsed"}


def run() -> dict[str, Any]:
    configure_logging("json", "ERROR")
    return {
        "make_run": make_run(),
        "scan_job": asyncio.run(_scan_jobs(SESSIONS)),
        "tradingd_scan": tradingd_scan(),
    }


if __name__ == "__main__":
    print(run())
