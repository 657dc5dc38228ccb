"""`GET /api/health`: when the daemon last completed an iteration and whether the broker (and its stream) answer.

In the daemon's process `HealthMonitor` (a bus observer) knows it live: the broker is taken as reachable when the
last tick completed, and unreachable when the last one was cut short by a `BrokerError` (`IterationFailed`). The
stream is asked of the broker where it has one (paper/live). `tradingd serve` has no daemon to ask: it reads the
journal's last `IterationCompleted` and `IterationFailed` rows instead, and says so (`source: journal`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from core.bus import EventBus
from core.messages import IterationCompleted, IterationFailed
from core.redact import redact

StreamProbe = Callable[[], bool]


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    last_iteration: int | None
    last_iteration_at: str | None
    last_error: str | None  # the last `IterationFailed`, when it is newer than the last completed iteration


class HealthMonitor:
    def __init__(self, stream: StreamProbe | None = None) -> None:
        self.stream = stream  # None: the broker has no stream (sim)
        self._lock = threading.Lock()
        self._snapshot = HealthSnapshot(None, None, None)

    def attach(self, bus: EventBus) -> None:
        bus.subscribe(IterationCompleted, self._completed)
        bus.subscribe(IterationFailed, self._failed)

    def _completed(self, message: IterationCompleted) -> None:
        with self._lock:
            self._snapshot = HealthSnapshot(message.iteration, message.ts_event.isoformat(), None)

    def _failed(self, message: IterationFailed) -> None:
        detail = redact(f"{message.kind}: {message.detail}")
        with self._lock:
            self._snapshot = HealthSnapshot(self._snapshot.last_iteration, self._snapshot.last_iteration_at, detail)

    def snapshot(self) -> HealthSnapshot:
        with self._lock:
            return self._snapshot
