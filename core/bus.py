"""The shared event bus: typed publish/subscribe inside one process.

Delivery is by exact message type. Synchronous handlers run inline, in publish order, breadth-first: a message
published from inside a handler is queued and delivered after the current one finishes, so handlers never recurse
into each other and the order of events is the order they were published. Asynchronous handlers (coroutine
functions) get a bounded `asyncio.Queue` each, drained by one named worker task; `publish_async` awaits room in those
queues (backpressure), `publish` drops nothing: it raises `BusOverflowError` when a queue is full.

A handler that raises is isolated: the error is logged with the message id and counted, and delivery to the other
handlers, and the loop, carry on. (Order paths must not depend on this: agents turn failures into events.)
"""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog

from core.messages import Message

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=Message)
SyncHandler = Callable[[Any], None]
AsyncHandler = Callable[[Any], Awaitable[None]]

DEFAULT_QUEUE_SIZE = 10_000


class BusOverflowError(RuntimeError):
    """A bounded queue is full: the producer must slow down (use `publish_async`)."""


class _AsyncSubscriber:
    __slots__ = ("handler", "name", "queue", "task")

    def __init__(self, handler: AsyncHandler, maxsize: int) -> None:
        self.handler = handler
        self.name = getattr(handler, "__qualname__", repr(handler))
        self.queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=maxsize)
        self.task: asyncio.Task[None] | None = None


class EventBus:
    def __init__(self, *, max_pending: int = DEFAULT_QUEUE_SIZE, async_queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._handlers: dict[type[Message], list[SyncHandler]] = {}
        self._async: dict[type[Message], list[_AsyncSubscriber]] = {}
        self._pending: deque[tuple[Message, bool]] = deque()
        self._max_pending = max_pending
        self._async_queue_size = async_queue_size
        self._dispatching = False
        self._taps: list[SyncHandler] = []
        self.published = 0
        self.delivered = 0
        self.handler_errors: Counter[str] = Counter()

    # -- subscription ---------------------------------------------------------------------------------------------
    def subscribe(self, message_type: type[M], handler: Callable[[M], None] | Callable[[M], Awaitable[None]]) -> None:
        """Deliver every published `message_type` to `handler` (sync: inline; coroutine function: own queue)."""
        if inspect.iscoroutinefunction(handler):
            self._async.setdefault(message_type, []).append(_AsyncSubscriber(handler, self._async_queue_size))
        else:
            self._handlers.setdefault(message_type, []).append(handler)  # type: ignore[arg-type]

    def tap(self, handler: SyncHandler) -> None:
        """Receive every message of every type (journal, stats), after its typed handlers."""
        self._taps.append(handler)

    # -- publishing -----------------------------------------------------------------------------------------------
    def publish(self, message: Message) -> None:
        self._dispatch(message, queued_async=False)

    async def publish_async(self, message: Message) -> None:
        """Publish, waiting for room in async subscribers' queues instead of failing."""
        for sub in self._async.get(type(message), ()):
            await sub.queue.put(message)
        self._dispatch(message, queued_async=True)

    def _dispatch(self, message: Message, *, queued_async: bool) -> None:
        if len(self._pending) >= self._max_pending:
            raise BusOverflowError(f"{len(self._pending)} messages pending; handlers are not keeping up")
        self._pending.append((message, queued_async))
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._pending:
                self._deliver(*self._pending.popleft())
        finally:
            self._dispatching = False

    def _deliver(self, message: Message, queued_async: bool) -> None:
        self.published += 1
        for handler in self._handlers.get(type(message), ()):
            try:
                handler(message)
                self.delivered += 1
            except Exception:  # isolation is the bus's job; the error is logged and counted, never swallowed silently
                self._record_failure(handler, message)
        if not queued_async:
            for sub in self._async.get(type(message), ()):
                try:
                    sub.queue.put_nowait(message)
                except asyncio.QueueFull:
                    raise BusOverflowError(f"queue of {sub.name} is full ({sub.queue.maxsize})") from None
        for tap in self._taps:
            try:
                tap(message)
            except Exception:
                self._record_failure(tap, message)

    def _record_failure(self, handler: Callable[..., Any], message: Message) -> None:
        name = getattr(handler, "__qualname__", repr(handler))
        self.handler_errors[name] += 1
        log.exception("bus_handler_failed", handler=name, message_type=type(message).__name__, message_id=message.id)

    # -- async workers --------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start one named worker task per async subscriber (call inside the running loop)."""
        for subs in self._async.values():
            for sub in subs:
                if sub.task is None:
                    sub.task = asyncio.get_running_loop().create_task(self._drain(sub), name=f"bus:{sub.name}")

    async def _drain(self, sub: _AsyncSubscriber) -> None:
        while True:
            message = await sub.queue.get()
            try:
                await sub.handler(message)
                self.delivered += 1
            except Exception:
                self._record_failure(sub.handler, message)
            finally:
                sub.queue.task_done()

    async def join(self) -> None:
        """Wait until every async subscriber has handled everything queued so far."""
        for subs in self._async.values():
            for sub in subs:
                await sub.queue.join()

    async def stop(self) -> None:
        await self.join()
        tasks = [sub.task for subs in self._async.values() for sub in subs if sub.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for subs in self._async.values():
            for sub in subs:
                sub.task = None
