"""Start-up of the `tradingd` commands: the median wall time of fresh `python -m tradingd ...` processes.

`python -m benchmarks bench_startup` prints one JSON object. For each of `--help`, `--version`, `status`, `halt` and
`resume` (on a temporary DATA_DIR whose state DB a first `halt` created), it runs the command `REPEATS` times and
reports the median, and beside it the *before* figure of the same run: the same command in a process that first
imports what the CLI used to import eagerly at its top (`EAGER`: the whole daemon via `tradingd.app`, the scan
runtime, exchange-calendars, importlib.metadata), which loads the very modules the old CLI loaded (compared by
`sys.modules` when this benchmark was written). The two alternate, so a change of machine load hits both alike. The
interpreter's own start (`python -c pass`) is given for scale. Nothing is asserted: these are measurements.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPEATS = 5
COMMANDS: dict[str, list[str]] = {
    "help": ["--help"],
    "version": ["--version"],
    "status": ["status"],
    "halt": ["halt", "--reason", "bench"],
    "resume": ["resume"],
}
TARGETS_MS = {"help": 400, "version": 400, "status": 600}  # issue 13, on an idle 2-core machine
EAGER = (
    "tradingd.app",
    "tradingd.cli_daemon",
    "tradingd.cli_state",
    "tradingd.cli_close",
    "tradingd.cli_restore",
    "tradingd.scan_runtime",
    "agents.daily_scan",
    "exchange_calendars",
    "importlib.metadata",
)
# The old path: every module the CLI imported at its top, then the command.
EAGER_MAIN = (
    "import importlib, sys\n"
    f"for name in {EAGER!r}:\n"
    "    importlib.import_module(name)\n"
    "sys.argv = ['tradingd', *sys.argv[1:]]\n"
    "from tradingd.cli import main\n"
    "main()\n"
)


def _env(data_dir: Path) -> dict[str, str]:
    # No keys, no mode from the caller: sim, the local state under a temporary DATA_DIR.
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "TRADING_MODE", "SIM_", "SYMBOLS"))}
    return {**keep, "DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}


def _time_ms(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=True, timeout=120)
    return (time.perf_counter() - started) * 1000


def run(repeats: int = REPEATS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        env = _env(cwd / "var")
        now = [sys.executable, "-m", "tradingd"]
        before = [sys.executable, "-c", EAGER_MAIN]
        _time_ms([*now, *COMMANDS["halt"]], cwd, env)  # the state DB `status` reads (resume lifts the halt)
        _time_ms([*now, *COMMANDS["resume"]], cwd, env)
        floor = [_time_ms([sys.executable, "-c", "pass"], cwd, env) for _ in range(repeats)]
        samples: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in COMMANDS}
        for _ in range(repeats):
            for name, args in COMMANDS.items():
                samples[name][0].append(_time_ms([*now, *args], cwd, env))
                samples[name][1].append(_time_ms([*before, *args], cwd, env))
    commands: dict[str, Any] = {}
    for name, (fast, slow) in samples.items():
        fast_ms, slow_ms = statistics.median(fast), statistics.median(slow)
        commands[name] = {
            "median_ms": round(fast_ms, 1),
            "before_median_ms": round(slow_ms, 1),
            "speedup": round(slow_ms / fast_ms, 2),
            **({"target_ms": TARGETS_MS[name]} if name in TARGETS_MS else {}),
        }
    return {"repeats": repeats, "python_floor_ms": round(statistics.median(floor), 1), "commands": commands}


if __name__ == "__main__":
    import json

    print(json.dumps(run()))
