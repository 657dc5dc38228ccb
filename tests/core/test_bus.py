from datetime import UTC, datetime

from core.bus import EventBus
from core.messages import IterationCompleted, IterationStarted, Message

T0 = datetime(2017, 1, 3, 21, tzinfo=UTC)


def started(i: int) -> IterationStarted:
    return IterationStarted(ts_event=T0, ts_init=T0, iteration=i, n_symbols=1)


def completed(i: int) -> IterationCompleted:
    return IterationCompleted(ts_event=T0, ts_init=T0, iteration=i, stats={})


def test_delivers_by_exact_type_only() -> None:
    bus = EventBus()
    seen: list[Message] = []
    bus.subscribe(IterationStarted, seen.append)
    bus.publish(started(1))
    bus.publish(completed(1))
    assert [type(m) for m in seen] == [IterationStarted]


def test_failing_handler_is_isolated_and_counted() -> None:
    bus = EventBus()
    seen: list[int] = []

    def boom(_: IterationStarted) -> None:
        raise RuntimeError("bad handler")

    bus.subscribe(IterationStarted, boom)
    bus.subscribe(IterationStarted, lambda m: seen.append(m.iteration))
    bus.publish(started(1))
    bus.publish(started(2))
    assert seen == [1, 2]
    assert sum(bus.handler_errors.values()) == 2


def test_messages_published_by_handlers_are_delivered_breadth_first() -> None:
    bus = EventBus()
    order: list[str] = []

    def on_started(m: IterationStarted) -> None:
        order.append(f"started{m.iteration}")
        bus.publish(completed(m.iteration))
        order.append(f"after-publish{m.iteration}")

    bus.subscribe(IterationStarted, on_started)
    bus.subscribe(IterationCompleted, lambda m: order.append(f"completed{m.iteration}"))
    bus.publish(started(1))
    assert order == ["started1", "after-publish1", "completed1"]


def test_sync_pending_queue_is_bounded() -> None:
    bus = EventBus(max_pending=2)

    def flood(_: IterationStarted) -> None:
        for i in range(5):
            bus.publish(completed(i))

    bus.subscribe(IterationStarted, flood)
    bus.publish(started(1))
    # the flood overflowed inside the handler: isolated and counted, the bus keeps working
    assert sum(bus.handler_errors.values()) == 1
    seen: list[int] = []
    bus.subscribe(IterationStarted, lambda m: seen.append(m.iteration))
    bus.publish(started(2))
    assert 2 in seen


def test_tap_sees_every_message() -> None:
    bus = EventBus()
    seen: list[str] = []
    bus.tap(lambda m: seen.append(type(m).__name__))
    bus.publish(started(1))
    bus.publish(completed(1))
    assert seen == ["IterationStarted", "IterationCompleted"]
