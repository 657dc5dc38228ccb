"""The shared event bus: typed publish/subscribe for observers inside one process.

The pipeline does not run on the bus: the orchestrator calls each stage with its input and gets its output, and each
stage publishes the events describing what it did. The bus carries those events to the observers: the journal (a
tap), the run statistics, and whatever watches the daemon (a dashboard, notifications, metrics).

Delivery is by exact message type, inline, in publish order, breadth-first: a message published from inside a handler
is queued and delivered after the current one finishes, so handlers never recurse into each other and the order of
events is the order they were published.

A handler that raises is isolated: the error is logged with the message id and counted, and delivery to the other
handlers, and the loop, carry on. (Order paths must not depend on this: no stage does its work in a handler.)
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from typing import Any, TypeVar

import structlog

from core.messages import Message

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=Message)
Handler = Callable[[Any], None]

DEFAULT_MAX_PENDING = 10_000


class BusOverflowError(RuntimeError):
    """Handlers keep publishing faster than they are delivered (a feedback loop between observers)."""


class EventBus:
    def __init__(self, *, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self._handlers: dict[type[Message], list[Handler]] = {}
        self._pending: deque[Message] = deque()
        self._max_pending = max_pending
        self._dispatching = False
        self._taps: list[Handler] = []
        self.published = 0
        self.delivered = 0
        self.handler_errors: Counter[str] = Counter()

    def subscribe(self, message_type: type[M], handler: Callable[[M], None]) -> None:
        """Deliver every published `message_type` to `handler`, inline."""
        self._handlers.setdefault(message_type, []).append(handler)

    def tap(self, handler: Handler) -> None:
        """Receive every message of every type (the journal), after its typed handlers."""
        self._taps.append(handler)

    def publish(self, message: Message) -> None:
        if len(self._pending) >= self._max_pending:
            raise BusOverflowError(f"{len(self._pending)} messages pending; handlers are not keeping up")
        if self._dispatching:
            self._pending.append(message)
            return
        self._dispatching = True
        try:
            # The common case, a publish from outside any handler, is delivered at once (no round trip through the
            # queue); what its handlers publish meanwhile is queued behind it. Leftovers of an interrupted delivery
            # (a BaseException out of a handler) still go first.
            if self._pending:
                self._pending.append(message)
            else:
                self._deliver(message)
            while self._pending:
                self._deliver(self._pending.popleft())
        finally:
            self._dispatching = False

    def _deliver(self, message: Message) -> None:
        self.published += 1
        for handler in self._handlers.get(type(message), ()):
            try:
                handler(message)
                self.delivered += 1
            except Exception:  # isolation is the bus's job; the error is logged and counted, never swallowed silently
                self._record_failure(handler, message)
        for tap in self._taps:
            try:
                tap(message)
            except Exception:
                self._record_failure(tap, message)

    def _record_failure(self, handler: Callable[..., Any], message: Message) -> None:
        name = getattr(handler, "__qualname__", repr(handler))
        self.handler_errors[name] += 1
        log.exception("bus_handler_failed", handler=name, message_type=type(message).__name__, message_id=message.id)
