"""Soak: replay the whole bundled market (505 symbols x 5 years) repeatedly; memory must stay flat.

Run with `make soak` (excluded from `make test`).
"""

import asyncio
import gc
from pathlib import Path

import pytest

from config.settings import Settings
from core.app import build_sim, load_assets


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.soak
def test_repeated_full_replays_do_not_grow_memory(tmp_path: Path) -> None:
    readings = []
    for run in range(3):
        app = build_sim(Settings(data_dir=tmp_path / str(run), symbols=("*",), log_level="ERROR"))

        async def go() -> None:
            await load_assets(app)  # noqa: B023 - the loop variable is used within the same iteration
            await app.orchestrator.run()  # noqa: B023

        asyncio.run(go())
        assert app.orchestrator.stats.bars > 600_000
        app.close()
        del app
        gc.collect()
        readings.append(_rss_mb())
    assert readings[-1] - readings[0] < 25, readings
    assert max(readings) < 300, readings
