"""Notifications' cost to a replay: the same sim replay with notifications off and on, to a loopback receiver
through apprise's json:// scheme, every kind (the default NOTIFY_EVENTS, so the daily digests too), interleaved.

The replay is tests/tradingd/notify/test_replay_notifications.py's account (a small whole-share account with tight
limits, so breakers trip) over Jun 2015 - Jun 2016, the 29 default symbols. `replay_*` times the orchestrator's run
(the trading loop: what a notification must never slow); `flush_*` the bounded flush at the stop, after the loop;
the counts say what was sent. "on" is unthrottled (every one of ~330 messages sent, ~1.7 ms of CPU each in the
daemon's process, mostly requests inside apprise, sent in the loop's quiet moments: in a replay, the flush);
`default_rate_*` the same with the default rate limit (20 a minute: most are given up at the stop). The receiver
runs in a process of its own (a channel is elsewhere in real use).
Target: on / off <= 1.10 for the replay (wall time; its CPU-time ratio beside it, steadier on a shared machine).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from config.settings import Settings
from core.logging import configure_logging
from tests.tradingd.notify.receiver import receiver_process
from tradingd.app import build_sim, load_assets
from tradingd.daemon_life import daemon_life

START, END = date(2015, 6, 1), date(2016, 6, 30)
UNTHROTTLED = 6000  # every message sent as soon as the sender gets to it
DEFAULT_RATE = Settings.model_fields["notify_rate_limit_per_minute"].default  # what a user gets: 20 a minute


def _settings(data_dir: Path, url: str | None, per_minute: int) -> Settings:
    return Settings(
        data_dir=data_dir,
        log_level="ERROR",
        use_scanner=False,
        sim_initial_cash=Decimal(5000),
        enable_fractional_shares=False,
        max_open_positions=6,
        stop_mode="close",
        max_daily_loss_pct=Decimal("0.003"),
        max_drawdown_pct=Decimal("0.025"),
        notify_urls=SecretStr(url) if url else None,
        notify_in_sim=True,
        notify_rate_limit_per_minute=per_minute,
    )


def _once(url: str | None, per_minute: int = UNTHROTTLED) -> dict[str, float]:
    """One replay: its loop's wall time and the process's CPU time over it (every thread: the sender's too)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = _settings(Path(tmp), url, per_minute)
        app = build_sim(settings, start=START, end=END)
        cpu_s: list[float] = []

        async def go() -> float:
            await load_assets(app)
            t, cpu = time.perf_counter(), time.process_time()
            await app.orchestrator.run()
            cpu_s.append(time.process_time() - cpu)
            return time.perf_counter() - t

        t0 = time.perf_counter()
        with daemon_life(settings, app, "bench"):
            loop_s = asyncio.run(go())
        total_s = time.perf_counter() - t0
        iterations = app.orchestrator.stats.iterations
        fills = app.orchestrator.stats.fills
        app.close()
    return {
        "replay_s": loop_s,
        "replay_cpu_s": cpu_s[0],
        "flush_s": max(0.0, total_s - loop_s),
        "iterations": iterations,
        "fills": fills,
    }


def run(repeats: int = 11, default_rate_repeats: int = 3) -> dict[str, Any]:
    configure_logging("json", "ERROR")
    off: list[dict[str, float]] = []
    on: list[dict[str, float]] = []
    default: list[dict[str, float]] = []
    # The receiver in a process of its own, as a real channel is elsewhere: in this one its HTTP handling would take
    # the GIL from the replay, which is the receiver's cost, not the daemon's.
    with receiver_process() as hook:
        _once(None)  # warm-up: the first replay of a process pays for imports and caches, on neither side's account
        for i in range(repeats):  # interleaved: a machine getting busier weighs on both alike
            off.append(_once(None))
            before = hook.count()
            on.append(_once(hook.url))
            on[-1]["received"] = hook.count() - before
            if i < default_rate_repeats:  # each waits out the stop's 10 s flush: a few are enough
                before = hook.count()
                default.append(_once(hook.url, DEFAULT_RATE))
                default[-1]["received"] = hook.count() - before
    pairs = list(zip(off, on, strict=True))
    off_s = statistics.median(r["replay_s"] for r in off)
    on_s = statistics.median(r["replay_s"] for r in on)
    off_cpu = statistics.median(r["replay_cpu_s"] for r in off)
    on_cpu = statistics.median(r["replay_cpu_s"] for r in on)
    return {
        "window": f"{START}..{END}",
        "iterations": int(on[0]["iterations"]),
        "fills": int(on[0]["fills"]),
        "messages_received_median": int(statistics.median(r["received"] for r in on)),
        "replay_off_median_s": round(off_s, 3),
        "replay_on_median_s": round(on_s, 3),
        "ratio_on_off": round(on_s / off_s, 3),  # unthrottled (6,000 a minute)
        # Each on run against the off run just before it: steadier than the medians' ratio on a shared machine.
        "ratio_pairs_median": round(statistics.median(b["replay_s"] / a["replay_s"] for a, b in pairs), 3),
        # CPU time of the whole process over the loop: the steadiest of the three on a shared machine (a 0.2 s wall
        # time moves by ±20% with whatever else runs), and it counts the sender thread's work alongside the loop's.
        "replay_cpu_off_median_s": round(off_cpu, 3),
        "replay_cpu_on_median_s": round(on_cpu, 3),
        "cpu_ratio_on_off": round(on_cpu / off_cpu, 3),
        "flush_on_median_s": round(statistics.median(r["flush_s"] for r in on), 3),
        # The default NOTIFY_RATE_LIMIT_PER_MINUTE: a burst of 20, then one every 3 s; the stop's 10 s flush gives up
        # on the rest (what a replay with NOTIFY_IN_SIM=true and the defaults does).
        "default_rate_on_median_s": round(statistics.median(r["replay_s"] for r in default), 3),
        "default_rate_ratio": round(statistics.median(r["replay_s"] for r in default) / off_s, 3),
        "default_rate_received_median": int(statistics.median(r["received"] for r in default)),
        "default_rate_flush_median_s": round(statistics.median(r["flush_s"] for r in default), 3),
        "target_ratio": 1.10,
    }
