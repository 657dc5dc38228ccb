"""Notifications' cost to a replay: the same sim replay with notifications off and on, to a loopback receiver
through apprise's json:// scheme, every kind (the default NOTIFY_EVENTS, so the daily digests too), interleaved.

The replay is tests/tradingd/notify/test_replay_notifications.py's account (a small whole-share account with tight
limits, so breakers trip) over Jun 2015 - Jun 2016, the 29 default symbols. `replay_*` times the orchestrator's run
(the trading loop: what a notification must never slow); `flush_*` the bounded flush at the stop, after the loop;
the counts say what was sent. "on" is unthrottled (every one of ~330 messages sent, ~1.7 ms of CPU each in the
daemon's process, mostly requests inside apprise, sent in the loop's quiet moments: in a replay, the flush);
`default_rate_*` the same with the default rate limit (20 a minute: most are given up at the stop). The receiver
runs in a process of its own (a channel is elsewhere in real use).
`test_kinds_*`: the notification test's kinds, without the per-session digest. `notify_handlers_*`: the notifier's own
work in the loop, timed inside the on runs (the steadiest figure on a shared machine).
Target: on / off <= 1.10 for the replay (wall time; its CPU-time ratio beside it, steadier on a shared machine).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from config.settings import Settings
from core.bus import EventBus
from core.logging import configure_logging
from core.notify_kinds import ALL_KINDS, NotifyKind
from tests.tradingd.notify.receiver import receiver_process
from tradingd.app import build_sim, load_assets
from tradingd.daemon_life import daemon_life

START, END = date(2015, 6, 1), date(2016, 6, 30)
UNTHROTTLED = 6000  # every message sent as soon as the sender gets to it
DEFAULT_RATE = Settings.model_fields["notify_rate_limit_per_minute"].default  # what a user gets: 20 a minute
ALL = ALL_KINDS  # the default NOTIFY_EVENTS: the daily digest too, built at every replayed session's close
# The notification test's kinds (tests/tradingd/notify/test_replay_notifications.py): what the proof
# sentence measures (every fill, one message per breaker trip), without a digest per replayed session.
TEST_KINDS = (NotifyKind.FILL, NotifyKind.REJECTED, NotifyKind.BREAKER, NotifyKind.KILL_SWITCH, NotifyKind.DAEMON)


def _settings(data_dir: Path, url: str | None, per_minute: int, kinds: tuple[NotifyKind, ...] = ALL) -> Settings:
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
        notify_events=kinds,
    )


class _HandlerClock:
    """The time spent in the handlers the notifier subscribes (observer and activity tap), all in the loop's thread:
    the added work itself, which a shared machine's load moves far less than a whole 0.2 s replay's time.
    `perf_counter` (45 ns a call), not `thread_time` (0.6 µs: ~5 ms of the clock's own over ~4,000 calls)."""

    def __init__(self, bus: EventBus) -> None:
        self.seconds = 0.0
        subscribe, tap = bus.subscribe, bus.tap

        def timed(handler: Callable[[Any], None]) -> Callable[[Any], None]:
            def run(message: Any) -> None:
                t = time.perf_counter()
                try:
                    handler(message)
                finally:
                    self.seconds += time.perf_counter() - t

            return run

        bus.subscribe = lambda kind, handler: subscribe(kind, timed(handler))  # type: ignore[method-assign]
        bus.tap = lambda handler: tap(timed(handler))  # type: ignore[method-assign]


def _once(url: str | None, per_minute: int = UNTHROTTLED, kinds: tuple[NotifyKind, ...] = ALL) -> dict[str, float]:
    """One replay: its loop's wall time and the process's CPU time over it (every thread: the sender's too)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = _settings(Path(tmp), url, per_minute, kinds)
        app = build_sim(settings, start=START, end=END)
        cpu_s: list[float] = []
        clock = _HandlerClock(app.orchestrator.bus)  # before the notifier subscribes (daemon_life)

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
        "handlers_s": clock.seconds,
        "iterations": iterations,
        "fills": fills,
    }


def run(repeats: int = 11, default_rate_repeats: int = 3) -> dict[str, Any]:
    configure_logging("json", "ERROR")
    off: list[dict[str, float]] = []
    on: list[dict[str, float]] = []
    test_kinds: list[dict[str, float]] = []
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
            test_kinds.append(_once(hook.url, kinds=TEST_KINDS))
            if i < default_rate_repeats:  # each waits out the stop's 10 s flush: a few are enough
                before = hook.count()
                default.append(_once(hook.url, DEFAULT_RATE))
                default[-1]["received"] = hook.count() - before
    pairs = list(zip(off, on, strict=True))
    off_s = statistics.median(r["replay_s"] for r in off)
    on_s = statistics.median(r["replay_s"] for r in on)
    off_cpu = statistics.median(r["replay_cpu_s"] for r in off)
    handlers_ms = statistics.median(r["handlers_s"] for r in on) * 1000
    test_s = statistics.median(r["replay_s"] for r in test_kinds)
    test_cpu = statistics.median(r["replay_cpu_s"] for r in test_kinds)
    test_handlers_ms = statistics.median(r["handlers_s"] for r in test_kinds) * 1000
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
        # The notifier's own work in the loop (every event through its handlers, the digests built), timed inside
        # the on runs: the steadiest figure of all, as a share of the off replay's CPU time.
        "notify_handlers_ms_per_replay": round(handlers_ms, 1),
        "notify_handlers_vs_replay_cpu_pct": round(handlers_ms / 1000 / off_cpu * 100, 2),
        # The notification test's kinds (fills, rejections, breakers, kill switch, start/stop; no digests).
        "test_kinds_on_median_s": round(test_s, 3),
        "test_kinds_ratio_on_off": round(test_s / off_s, 3),
        "test_kinds_cpu_ratio_on_off": round(test_cpu / off_cpu, 3),
        "test_kinds_handlers_ms_per_replay": round(test_handlers_ms, 1),
        "flush_on_median_s": round(statistics.median(r["flush_s"] for r in on), 3),
        # The default NOTIFY_RATE_LIMIT_PER_MINUTE: a burst of 20, then one every 3 s; the stop's 10 s flush gives up
        # on the rest (what a replay with NOTIFY_IN_SIM=true and the defaults does).
        "default_rate_on_median_s": round(statistics.median(r["replay_s"] for r in default), 3),
        "default_rate_ratio": round(statistics.median(r["replay_s"] for r in default) / off_s, 3),
        "default_rate_received_median": int(statistics.median(r["received"] for r in default)),
        "default_rate_flush_median_s": round(statistics.median(r["flush_s"] for r in default), 3),
        "target_ratio": 1.10,
    }
