"""`LiveFeed`: the daemon's events for the page, as compact JSON with sequence numbers (`GET /api/stream`).

A bus observer in the daemon's process: `publish` calls it inline in the trading loop, so it only formats a small
dict and appends it to a bounded buffer under a lock held for that append (never blocks, never does I/O). The web
server's thread reads what came after a sequence number; an SSE client resuming with `Last-Event-ID` gets what it
missed, or a `reset` when the buffer no longer reaches back that far. Event ids are `<boot>:<seq>`: `boot` is random
per process, so an id from before a daemon restart (whose sequence starts again at 0) is recognised as another
process's and answered with a `reset`, never with silence.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from core.bus import EventBus
from core.messages import (
    CircuitBreakerTripped,
    IterationCompleted,
    IterationFailed,
    Message,
    OrderDenied,
    OrderFilled,
    OrderRejected,
    TradingStateChanged,
)
from core.redact import redact_value

DEFAULT_CAPACITY: Final = 2_000
M = TypeVar("M", bound=Message)


@dataclass(frozen=True, slots=True)
class FeedEvent:
    seq: int
    kind: str
    data: str  # the JSON text sent as the SSE `data:` line


def _iteration(m: IterationCompleted) -> dict[str, Any]:
    return {"iteration": m.iteration, **m.stats.as_json()}


def _filled(m: OrderFilled) -> dict[str, Any]:
    fill = m.fill
    return {
        "symbol": fill.symbol,
        "side": fill.side.value,
        "qty": str(fill.qty),
        "price": str(fill.price),
        "fill_ts": fill.ts.isoformat(),
        "client_order_id": fill.client_order_id,
    }


def _rejected(m: OrderRejected) -> dict[str, Any]:
    return {"symbol": m.symbol, "reason": m.reason.value, "detail": m.detail}


def _denied(m: OrderDenied) -> dict[str, Any]:
    signal = m.signal
    return {"symbol": signal.symbol, "side": signal.side.value, "reason": m.reason.value, "detail": m.detail}


def _state(m: TradingStateChanged) -> dict[str, Any]:
    return {"previous": m.previous.value, "current": m.current.value, "reason": m.reason.value, "detail": m.detail}


def _breaker(m: CircuitBreakerTripped) -> dict[str, Any]:
    return {"breaker": m.breaker.value, "detail": m.detail}


def _failed(m: IterationFailed) -> dict[str, Any]:
    return {"tick": m.tick, "kind": m.kind, "detail": m.detail}


class LiveFeed:
    """Subscribe it to the bus with `attach`; read it from any thread with `after` / `last_seq`."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._events: deque[FeedEvent] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._seq = 0
        self.boot = secrets.token_hex(8)  # this process's: the prefix of every event id

    def event_id(self, seq: int) -> str:
        return f"{self.boot}:{seq}"

    def resume_point(self, last_event_id: str) -> tuple[int, bool]:
        """Where a client resuming with `last_event_id` starts, and whether it must reload first (`reset`): an id of
        another process (a restarted daemon) restarts from the beginning of this one's buffer. ValueError when the
        id is none of ours."""
        boot, _, seq_text = last_event_id.strip().rpartition(":")  # a bare number: an id from an older version
        seq = int(seq_text)
        if seq < 0:
            raise ValueError(last_event_id)
        if boot != self.boot or seq > self._seq:
            return 0, True
        return seq, False

    def attach(self, bus: EventBus) -> None:
        self._on(bus, IterationCompleted, _iteration)
        self._on(bus, OrderFilled, _filled)
        self._on(bus, OrderRejected, _rejected)
        self._on(bus, OrderDenied, _denied)
        self._on(bus, TradingStateChanged, _state)
        self._on(bus, CircuitBreakerTripped, _breaker)
        self._on(bus, IterationFailed, _failed)

    def _on(self, bus: EventBus, kind: type[M], fields: Callable[[M], dict[str, Any]]) -> None:
        def handler(message: M) -> None:
            self.add(kind.__name__, {"ts": message.ts_event.isoformat(), **fields(message)})

        bus.subscribe(kind, handler)

    def add(self, kind: str, payload: dict[str, Any]) -> None:
        # Every string leaving the feed is masked here: SSE bypasses the JSON masking middleware (redacting.py).
        payload = redact_value(payload)
        with self._lock:
            self._seq += 1
            body = json.dumps({"seq": self._seq, "type": kind, **payload}, separators=(",", ":"), default=str)
            self._events.append(FeedEvent(self._seq, kind, body))

    @property
    def last_seq(self) -> int:
        return self._seq

    def after(self, seq: int) -> tuple[list[FeedEvent], bool]:
        """The events after `seq`, oldest first, and whether some in between were dropped (the client should reload
        everything: `reset`)."""
        with self._lock:
            events = list(self._events)
        if not events:
            return [], seq < self._seq and seq > 0
        gap = seq > 0 and events[0].seq > seq + 1
        return [event for event in events if event.seq > seq], gap
