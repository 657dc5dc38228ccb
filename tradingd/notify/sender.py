"""The background sender: drains the notification queue on its own thread, so the trading loop never waits on a
channel.

`submit` (called from the bus observer, in the loop's thread) only puts the message on a bounded queue; a full queue
drops it, counted. The sender thread takes one message at a time: it waits for the rate limit (NOTIFY_RATE_LIMIT_PER_
MINUTE, all channels together), draws a digest's chart, then gives the message to every channel. A channel that
fails (refuses, raises, is unreachable) is logged `notify_failed` under its masked name and retried with exponential
backoff (tenacity), up to `RetryPolicy.attempts` tries, then given up and counted; nothing is ever raised out of here.
At stop, `close` lets the thread flush for at most `flush_seconds` (no wait that would run past that deadline is
started), then gives up on what is left, counted.

The clock and the sleep are injected: the unit tests run the rate limit and the backoff on a fake clock and call
`deliver` directly, without the thread.
"""

from __future__ import annotations

import contextlib
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
import tenacity

from tradingd.notify.channels import Channel
from tradingd.notify.notification import EquityChart, Notification
from tradingd.notify.rate_limit import TokenBucket

log = structlog.get_logger(__name__)

DEFAULT_MAX_QUEUE = 1000  # a replay with NOTIFY_IN_SIM can make thousands; past this they are dropped, counted
DEFAULT_FLUSH_SECONDS = 10.0
# The sender yields to the trading loop: it sends once no bus event has been seen for this long. Sending costs ~1.7 ms
# of CPU a message (requests inside apprise), under the GIL the loop needs: a replay publishes without pause, so its
# messages go after the loop (in the stop's flush); a paper/live loop is quiet between ticks, so theirs go 50 ms after.
QUIET_S = 0.05

ChartRenderer = Callable[[EquityChart, Path], Path]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Tries per channel and message, and the exponential backoff between them (2 s, 4 s, 8 s … at most 60 s)."""

    attempts: int = 4
    first_wait_s: float = 2.0
    max_wait_s: float = 60.0


@dataclass(slots=True)
class SenderCounts:
    """What happened to the messages (the run's end logs them as `notify_summary`)."""

    accepted: int = 0  # put on the queue
    dropped: int = 0  # the queue was full
    sent: int = 0  # delivered to every channel
    failed: int = 0  # at least one channel gave up on it after every retry
    abandoned: int = 0  # still queued or in flight when the stop's flush ran out of time
    channel_failures: int = 0  # channel attempts that failed (each retry counts)


class _PastDeadlineError(Exception):
    """A wait would run past the stop's flush deadline: give up on this message."""


class NotificationSender:
    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        per_minute: int,
        retry: RetryPolicy = RetryPolicy(),
        max_queue: int = DEFAULT_MAX_QUEUE,
        render_chart: ChartRenderer | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._channels = tuple(channels)
        self._bucket = TokenBucket(per_minute, monotonic=monotonic)
        self._retry = retry
        self._queue: queue.Queue[Notification | None] = queue.Queue(maxsize=max_queue)
        self._render_chart = render_chart
        self._monotonic = monotonic
        self._sleep = sleep
        self._deadline: float | None = None
        self._last_activity: float | None = None  # when the loop last published (None: never told)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # the counts are written by two threads
        self._dropping = False  # logged once per run of drops, not once per dropped message
        self.counts = SenderCounts()

    # -- the loop's side ------------------------------------------------------------------------------------------
    def submit(self, notification: Notification) -> None:
        """Queue a message; never blocks, never raises (a full queue drops it, counted)."""
        try:
            self._queue.put_nowait(notification)
        except queue.Full:
            with self._lock:
                self.counts.dropped += 1
            if not self._dropping:
                self._dropping = True
                log.warning("notify_queue_full", kind=notification.kind.value, max_queue=self._queue.maxsize)
            return
        self._dropping = False
        with self._lock:
            self.counts.accepted += 1

    def note_activity(self) -> None:
        """The loop is busy (a bus tap calls this for every event): sending waits for a quiet moment."""
        self._last_activity = self._monotonic()

    def start(self) -> None:
        # A daemon thread: a channel stuck past the flush deadline never keeps the process alive.
        self._thread = threading.Thread(target=self._run, name="notify-sender", daemon=True)
        self._thread.start()

    def close(self, flush_seconds: float = DEFAULT_FLUSH_SECONDS) -> SenderCounts:
        """Flush for at most `flush_seconds`, then give up on what is left (counted in `abandoned`)."""
        self._deadline = deadline = self._monotonic() + flush_seconds
        thread = self._thread
        if thread is not None:
            with contextlib.suppress(queue.Full):  # then the thread gives up at the deadline by itself
                self._queue.put(None, timeout=flush_seconds)
            # One deadline for both waits; the second past it lets a send under way finish its request.
            thread.join(max(0.0, deadline - self._monotonic()) + 1.0)
        with self._lock:
            counts = self.counts
            counts.abandoned = counts.accepted - counts.sent - counts.failed
            if counts.abandoned:
                log.warning("notify_flush_incomplete", abandoned=counts.abandoned, flush_seconds=flush_seconds)
        return counts

    # -- the sender thread ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._past_deadline():
                continue  # counted as abandoned by close()
            try:
                self.deliver(item)
            except Exception:  # never let one message end the thread (deliver catches the channels' own errors)
                log.exception("notify_sender_error", kind=item.kind.value)

    def _past_deadline(self, wait: float = 0.0) -> bool:
        return self._deadline is not None and self._monotonic() + wait > self._deadline

    def _pause(self, seconds: float) -> None:
        if self._past_deadline(seconds):
            raise _PastDeadlineError
        self._sleep(seconds)

    def _wait_for_quiet(self) -> None:
        while self._deadline is None and self._last_activity is not None:
            busy_for = QUIET_S - (self._monotonic() - self._last_activity)
            if busy_for <= 1e-6:  # float residue must not leave the sender sleeping nothing forever
                return
            self._sleep(busy_for)

    def deliver(self, notification: Notification) -> bool:
        """Send one message to every channel: a quiet moment of the loop (until the stop), the rate limit, the chart,
        retries. True when every channel took it."""
        try:
            self._wait_for_quiet()
            while (wait := self._bucket.delay()) > 0:
                self._pause(wait)
        except _PastDeadlineError:
            return False
        self._bucket.take()
        if notification.chart is None:
            ok = self._send_all(notification, None)
        else:  # a scratch folder only for a chart: most messages are text
            with tempfile.TemporaryDirectory(prefix="tradingd-notify-") as scratch:
                ok = self._send_all(notification, self._chart(notification, Path(scratch)))
        with self._lock:
            if ok:
                self.counts.sent += 1
            else:
                self.counts.failed += 1
        return ok

    def _send_all(self, notification: Notification, attachment: Path | None) -> bool:
        # Every channel gets its try: one failing never keeps the message from the others.
        results = [self._send(channel, notification, attachment) for channel in self._channels]
        return all(results)

    def _chart(self, notification: Notification, scratch: Path) -> Path | None:
        if notification.chart is None or self._render_chart is None:
            return None
        if not any(channel.supports_attachments for channel in self._channels):
            return None
        try:
            return self._render_chart(notification.chart, scratch / "equity.png")
        except Exception as error:  # the digest still goes, without its chart
            log.warning("notify_chart_failed", error=str(error), kind=type(error).__name__)
            return None

    def _send(self, channel: Channel, notification: Notification, attachment: Path | None) -> bool:
        def attempt() -> bool:
            return channel.send(notification.title, notification.body, attachment)

        def failed(state: tenacity.RetryCallState) -> None:
            outcome = state.outcome
            error = outcome.exception() if outcome is not None and outcome.failed else None
            self._note_failure(channel, notification, state.attempt_number, error, final=False)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._retry.attempts),
            wait=tenacity.wait_exponential(multiplier=self._retry.first_wait_s, max=self._retry.max_wait_s),
            retry=tenacity.retry_if_result(lambda ok: not ok) | tenacity.retry_if_exception_type(Exception),
            sleep=self._pause,
            before_sleep=failed,
            reraise=False,
        )
        try:
            return bool(retrying(attempt))
        except tenacity.RetryError as error:
            last = error.last_attempt
            self._note_failure(
                channel, notification, last.attempt_number, last.exception() if last.failed else None, final=True
            )
        except _PastDeadlineError:
            log.warning("notify_failed", channel=channel.name, kind=notification.kind.value, gave_up="stop deadline")
        return False

    def _note_failure(
        self,
        channel: Channel,
        notification: Notification,
        attempt: int,
        error: BaseException | None,
        *,
        final: bool,
    ) -> None:
        """`notify_failed`: the channel's masked name and the error's class only (its text may quote the URL)."""
        with self._lock:
            self.counts.channel_failures += 1
        log.warning(
            "notify_failed",
            channel=channel.name,
            kind=notification.kind.value,
            attempt=attempt,
            error=type(error).__name__ if error is not None else "refused",
            gave_up=final,
        )
