"""Test clocks, both `core.clock.Clock`s: `FakeClock` moves only when the test says so (either way, unlike
`SimClock`), `ServerClock` reads the fake Alpaca server's time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.fakes.alpaca_server import FakeAlpacaServer


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self._now = self._checked(now)

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        self._now = self._checked(now)

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    async def sleep(self, seconds: float) -> None:
        self.advance(timedelta(seconds=max(seconds, 0.0)))

    @staticmethod
    def _checked(now: datetime) -> datetime:
        if now.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware datetime")
        return now


class ServerClock:
    """The adapters' clock reads the fake server's, so both sides always agree on 'now'; sleeping moves the server."""

    def __init__(self, server: FakeAlpacaServer) -> None:
        self._server = server

    def now(self) -> datetime:
        return self._server.now

    async def sleep(self, seconds: float) -> None:
        self._server.set_now(self._server.now + timedelta(seconds=max(seconds, 0.0)))
