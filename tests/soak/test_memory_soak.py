"""Soak: replay the whole bundled market (505 symbols x 5 years) repeatedly; memory must stay flat.

Run with `make soak` (excluded from `make test`).
"""

import asyncio
import gc
from pathlib import Path

import pytest

from config.settings import Settings
from tradingd.app import build_sim, load_assets


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _replay_everything(data_dir: Path) -> int:
    app = build_sim(Settings(data_dir=data_dir, use_scanner=False, symbols=("*",), log_level="ERROR"))

    async def go() -> None:
        await load_assets(app)
        await app.orchestrator.run()

    asyncio.run(go())
    bars = app.orchestrator.stats.bars
    app.close()
    return bars


@pytest.mark.soak
def test_repeated_full_replays_do_not_grow_memory(tmp_path: Path) -> None:
    readings = []
    for run in range(3):
        assert _replay_everything(tmp_path / str(run)) > 600_000
        gc.collect()
        readings.append(_rss_mb())
    assert readings[-1] - readings[0] < 25, readings
    assert max(readings) < 300, readings
