"""A daemon's start and stop as events: `DaemonStarted` (with `unclean_restart`) and `DaemonStopped`, and the
observers that need the whole run (notifications) started before the first and stopped after the last.

How a start knows the previous daemon of this state did not stop cleanly: `DATA_DIR/<mode>/daemon.running`, written
durably (temp file, fsync, rename, fsync of the folder) when a daemon starts and deleted when it leaves its loop by
any path of its own (finished, a signal, an error it reports). A daemon killed (kill -9, OOM, a crash of the
interpreter, power lost) leaves it behind; the next start finds it. The daemon lock (`core/daemon_lock.py`) cannot
tell: flock is dropped by the kernel however its holder died, and its file is never deleted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import structlog

from config.settings import Settings
from core.fsync import fsync_directory
from core.messages import DaemonStarted, DaemonStopped
from core.private_files import FILE_MODE, private_dir
from tradingd.app import App
from tradingd.local_state import state_db_path
from tradingd.notify.service import start_notifier
from tradingd.orchestrator import Orchestrator

log = structlog.get_logger(__name__)

RUN_MARKER = "daemon.running"


class RunMarker:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / RUN_MARKER

    def begin(self, command: str) -> bool:
        """Mark this daemon as running; True when a previous one's mark was still there (it did not stop cleanly)."""
        unclean = self.path.exists()
        private_dir(self.path.parent)
        text = json.dumps({"pid": os.getpid(), "started": datetime.now(UTC).isoformat(), "command": command})
        temp = self.path.with_name(f".{RUN_MARKER}.{os.getpid()}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, self.path)
        fsync_directory(self.path.parent)
        return unclean

    def end(self) -> None:
        self.path.unlink(missing_ok=True)
        fsync_directory(self.path.parent)


@contextmanager
def daemon_life(settings: Settings, app: App, command: str) -> Iterator[None]:
    """Around the daemon's run: notifications on, the run marker, `DaemonStarted`; then `DaemonStopped` (reason
    `finished`, `signal` or `error`), the marker removed, notifications flushed (bounded)."""
    notifier = start_notifier(settings, app)
    orchestrator = app.orchestrator
    marker = RunMarker(state_db_path(settings).parent)
    unclean = marker.begin(command)
    if unclean:
        log.warning("unclean_restart", marker=str(marker.path), note="the previous daemon did not stop cleanly")
    mode = settings.mode.value
    now = orchestrator.clock.now()
    orchestrator.bus.publish(DaemonStarted(ts_event=now, ts_init=now, mode=mode, unclean_restart=unclean))
    reason = "finished"
    try:
        yield
    except BaseException:
        reason = "error"
        raise
    finally:
        if reason == "finished" and orchestrator.stop_requested:
            reason = "signal"
        now = orchestrator.clock.now()
        iterations = orchestrator.stats.iterations
        try:
            orchestrator.bus.publish(
                DaemonStopped(ts_event=now, ts_init=now, mode=mode, reason=reason, iterations=iterations)
            )
            _journal_the_stop(orchestrator)
        finally:
            marker.end()
            if notifier is not None:
                notifier.close()


def _journal_the_stop(orchestrator: Orchestrator) -> None:
    """`DaemonStopped` into the journal (after the last tick's commit, nothing else writes it). A store that cannot
    take it (the disk that ended the run, say) costs that row, logged, never the error being raised."""
    try:
        orchestrator.write_journal()
    except Exception as error:
        log.warning("journal_stop_failed", error=str(error), kind=type(error).__name__)
