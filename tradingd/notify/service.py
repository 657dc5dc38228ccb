"""Notifications for one daemon: the channels, the sender thread and the bus observer, from the settings.

`start_notifier` returns None when there is nothing to do: no NOTIFY_URLS, or a sim replay without NOTIFY_IN_SIM.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from config.settings import Settings
from core.candidates import CandidatesFile, CandidatesFileReader
from core.types import TradingMode
from tradingd.notify.channels import check_notify_urls, parse_channels
from tradingd.notify.digest import DigestBuilder
from tradingd.notify.notification import EquityChart
from tradingd.notify.observer import NotificationObserver
from tradingd.notify.sender import DEFAULT_FLUSH_SECONDS, NotificationSender, SenderCounts

if TYPE_CHECKING:
    from tradingd.app import App

log = structlog.get_logger(__name__)


def notifications_wanted(settings: Settings) -> bool:
    return settings.notify_urls is not None and (settings.mode is not TradingMode.SIM or settings.notify_in_sim)


def check_notify_settings(settings: Settings) -> None:
    """The set-up check (`run`, `replay`, `validate`): every URL of NOTIFY_URLS parses, or a `SetupError`."""
    if notifications_wanted(settings) and settings.notify_urls is not None:
        check_notify_urls(settings.notify_urls.get_secret_value())


def draw_chart(chart: EquityChart, path: Path) -> Path:
    from analytics.png import draw_equity_png  # noqa: PLC0415 - matplotlib, only when a digest is sent

    return draw_equity_png(chart.sessions, chart.equity, chart.title, path)


@dataclass(slots=True)
class Notifier:
    sender: NotificationSender
    observer: NotificationObserver

    def close(self, flush_seconds: float = DEFAULT_FLUSH_SECONDS) -> SenderCounts:
        """Flush (bounded), stop the sender thread, log the counts."""
        counts = self.sender.close(flush_seconds)
        log.info(
            "notify_summary",
            accepted=counts.accepted,
            sent=counts.sent,
            failed=counts.failed,
            dropped=counts.dropped,
            abandoned=counts.abandoned,
            channel_failures=counts.channel_failures,
        )
        return counts


def start_notifier(settings: Settings, app: App) -> Notifier | None:
    """Subscribe the observer to the daemon's bus and start the sender thread (None: notifications off)."""
    if not notifications_wanted(settings) or settings.notify_urls is None:
        if settings.notify_urls is not None:
            log.info("notify_off_in_sim", note="NOTIFY_IN_SIM=true sends a replay's notifications")
        return None
    channels = parse_channels(settings.notify_urls.get_secret_value())
    sender = NotificationSender(channels, per_minute=settings.notify_rate_limit_per_minute, render_chart=draw_chart)
    orchestrator = app.orchestrator
    mode = settings.mode.value
    focus = orchestrator.focus
    candidates_file = settings.candidates_file

    from_file = CandidatesFileReader(candidates_file)  # paper/live without the scanner: what `tradingd scan` wrote

    def candidates() -> CandidatesFile | None:
        return focus.latest_candidates() if focus is not None else from_file.read()

    digest = DigestBuilder(app.store, orchestrator.calendar, candidates, f"tradingd {mode}")
    observer = NotificationObserver(
        orchestrator.bus,
        sender.submit,
        kinds=settings.notify_events,
        mode=mode,
        broker_down_after=timedelta(minutes=settings.notify_broker_down_minutes),
        digest=digest,
        # A replay's sessions go by many a second: only its last digest carries the chart (drawn after the loop).
        chart_last_digest_only=settings.mode is TradingMode.SIM,
    )
    # Every event says the loop is busy (a timestamp per event): the sender sends in its quiet moments.
    orchestrator.bus.tap(lambda _message: sender.note_activity())
    sender.start()
    log.info(
        "notify_started",
        channels=[channel.name for channel in channels],
        kinds=[kind.value for kind in settings.notify_events],
        per_minute=settings.notify_rate_limit_per_minute,
    )
    return Notifier(sender, observer)
