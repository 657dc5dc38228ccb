"""The sender on a fake clock, without its thread: rate limit, retries with backoff, failing channels, the queue."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from core.notify_kinds import NotifyKind
from tests.tradingd.notify.fakes import FakeTime, RecordingChannel
from tradingd.notify.notification import EquityChart, Notification
from tradingd.notify.sender import QUIET_S, NotificationSender, RetryPolicy

MESSAGE = Notification(NotifyKind.FILL, "title", "body")


def _sender(channels: list[RecordingChannel], time: FakeTime, **options: object) -> NotificationSender:
    return NotificationSender(channels, monotonic=time.monotonic, sleep=time.sleep, **options)  # type: ignore[arg-type]


def test_rate_limit_spaces_messages_after_the_burst() -> None:
    time = FakeTime()
    channel = RecordingChannel()
    sender = _sender([channel], time, per_minute=6)
    for _ in range(8):
        assert sender.deliver(MESSAGE)
    assert len(channel.sent) == 8
    # 6 go at once (the burst), then one every 10 s (6 a minute).
    assert time.slept == pytest.approx([10.0, 10.0])
    assert sender.counts.sent == 8


def test_a_refusing_channel_is_retried_with_exponential_backoff() -> None:
    time = FakeTime()
    channel = RecordingChannel(failures_left=2)
    sender = _sender([channel], time, per_minute=60, retry=RetryPolicy(attempts=4, first_wait_s=2, max_wait_s=60))
    assert sender.deliver(MESSAGE)
    assert len(channel.sent) == 1
    assert time.slept == pytest.approx([2.0, 4.0])
    assert sender.counts.channel_failures == 2
    assert sender.counts.sent == 1


def test_a_channel_failing_every_time_is_given_up_counted_and_never_raises() -> None:
    time = FakeTime()
    broken = RecordingChannel(name="json#1", failures_left=100, raises=True)
    healthy = RecordingChannel(name="json#2")
    sender = _sender([broken, healthy], time, per_minute=60, retry=RetryPolicy(attempts=3, first_wait_s=1))
    with structlog.testing.capture_logs() as logs:
        assert sender.deliver(MESSAGE) is False
    assert len(healthy.sent) == 1  # the other channel still got it
    assert sender.counts.failed == 1
    assert sender.counts.channel_failures == 3
    failures = [entry for entry in logs if entry["event"] == "notify_failed"]
    assert [entry["attempt"] for entry in failures] == [1, 2, 3]
    assert failures[-1]["gave_up"] is True
    assert all(entry["channel"] == "json#1" and entry["error"] == "ConnectionError" for entry in failures)
    assert "secret" not in repr(logs)  # the error's text (which may quote the URL) is never logged


def test_no_wait_starts_past_the_stop_deadline() -> None:
    time = FakeTime()
    channel = RecordingChannel(failures_left=100)
    sender = _sender([channel], time, per_minute=60, retry=RetryPolicy(attempts=10, first_wait_s=4))
    sender.close(flush_seconds=5)  # no thread started: only sets the deadline
    assert sender.deliver(MESSAGE) is False
    assert sum(time.slept) <= 5


def test_a_full_queue_drops_counted_and_close_counts_what_was_left() -> None:
    time = FakeTime()
    sender = _sender([RecordingChannel()], time, per_minute=60, max_queue=2)
    for _ in range(5):
        sender.submit(MESSAGE)
    counts = sender.close(flush_seconds=0)
    assert (counts.accepted, counts.dropped, counts.abandoned) == (2, 3, 2)


def test_the_thread_drains_the_queue_and_close_flushes() -> None:
    channel = RecordingChannel()
    sender = NotificationSender([channel], per_minute=600)
    sender.start()
    for index in range(5):
        sender.submit(Notification(NotifyKind.FILL, f"t{index}", "b"))
    counts = sender.close(flush_seconds=30)
    assert [title for title, _, _ in channel.sent] == ["t0", "t1", "t2", "t3", "t4"]
    assert (counts.sent, counts.abandoned) == (5, 0)


def test_a_digest_chart_is_drawn_only_for_channels_that_take_attachments(tmp_path: Path) -> None:
    drawn: list[Path] = []

    def render(chart: EquityChart, path: Path) -> Path:
        drawn.append(path)
        path.write_bytes(b"PNG " + chart.title.encode())
        return path

    chart = EquityChart(sessions=(), equity=(), title="equity")
    digest = Notification(NotifyKind.DIGEST, "digest", "body", chart)
    time = FakeTime()
    text_only = RecordingChannel(supports_attachments=False)
    sender = _sender([text_only], time, per_minute=60, render_chart=render)
    sender.deliver(digest)
    assert drawn == []
    assert text_only.sent[0][2] is None
    both = RecordingChannel()
    sender = _sender([both], time, per_minute=60, render_chart=render)
    sender.deliver(digest)
    assert both.sent[0][2] == b"PNG equity"
    assert not drawn[0].exists()  # the scratch file is gone once sent


def test_sending_waits_for_a_quiet_moment_of_the_loop_until_the_stop() -> None:
    time = FakeTime()
    channel = RecordingChannel()
    sender = _sender([channel], time, per_minute=60)
    sender.note_activity()
    assert sender.deliver(MESSAGE)
    assert time.slept == pytest.approx([QUIET_S])  # waited until the loop had been quiet that long
    sender.note_activity()
    sender.close(flush_seconds=5)  # at the stop nothing waits for quiet any more
    assert sender.deliver(MESSAGE)
    assert time.slept == pytest.approx([QUIET_S])
