"""Memory of a 500-symbol sim daemon, measured in a fresh child process: peak RSS and growth over the run.

Flatness: RSS sampled after the first 200 iterations and at the end of the 1,259-iteration replay; the growth
between them is what a long soak would accumulate.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

CHILD = r"""
import asyncio, json, tempfile
from pathlib import Path
from config.settings import Settings
from tradingd.app import build_sim, load_assets
from core.logging import configure_logging

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0

configure_logging("json", "ERROR")
samples = {}
def on_iteration(stats):
    if stats["iteration"] in (200, 600, 1000):
        samples[stats["iteration"]] = rss_mb()

with tempfile.TemporaryDirectory() as tmp:
    settings = Settings(data_dir=Path(tmp), use_scanner=False, symbols=("*",), log_level="ERROR")
    app = build_sim(settings, on_iteration=on_iteration)
    async def go():
        await load_assets(app)
        await app.orchestrator.run()
    asyncio.run(go())
    samples["end"] = rss_mb()
    app.close()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would report its parent's peak.
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
print(json.dumps({"peak_rss_mb": round(peak, 1), "samples": {str(k): round(v, 1) for k, v in samples.items()}}))
"""


def run() -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    child = json.loads(out.stdout.strip().splitlines()[-1])
    samples = child["samples"]
    return {
        "symbols": 505,
        "peak_rss_mb": child["peak_rss_mb"],
        "rss_after_200_iterations_mb": samples["200"],
        "rss_at_end_mb": samples["end"],
        "growth_200_to_end_mb": round(samples["end"] - samples["200"], 1),
        "target": "< 200 MB peak RSS (the whole replay, measured in a fresh child process), flat over a long run",
    }


if __name__ == "__main__":
    print(run())
