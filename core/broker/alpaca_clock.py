"""A clock that reads the broker's time: the daemon's `now` is whatever Alpaca's `/v2/clock` last said.

Test-only (`TRADINGD_TEST_CLOCK=broker` with `TRADINGD_TEST_HOOKS=1`): a daemon running as a subprocess against the
project's fake Alpaca server must live in the server's time (2013-2018 bars), not the wall clock, or its calendar
and the server's would disagree. Time stands still between reads, as in a replay: `now()` is the last reading, and
`sleep(s)` reads the broker's clock until it has moved `s` seconds on. The fake server moves its clock on each read
in that mode, so a run is a deterministic function of what the daemon does, never of the machine's speed.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from alpaca.trading.client import TradingClient

from core.broker.alpaca_options import AlpacaConnection
from core.broker.alpaca_wire import clock_from_wire

# A real broker's clock moves with the wall clock; between readings, give it time to (never reached against the fake).
POLL_SECONDS = 0.0


class BrokerClock:
    def __init__(self, connection: AlpacaConnection) -> None:
        if connection.api_key is None or connection.secret_key is None:
            raise ValueError("the broker's clock needs ALPACA_API_KEY and ALPACA_SECRET_KEY")
        self._client = TradingClient(
            api_key=connection.api_key.get_secret_value(),
            secret_key=connection.secret_key.get_secret_value(),
            paper=connection.paper,
            raw_data=True,
            url_override=connection.trading_url,
        )
        self._now = self._read()

    def _read(self) -> datetime:
        raw: Any = self._client.get_clock()
        return clock_from_wire(dict(raw)).timestamp

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        target = self._now + timedelta(seconds=max(seconds, 0.0))
        while True:
            self._now = await asyncio.to_thread(self._read)
            if self._now >= target:
                return
            await asyncio.sleep(POLL_SECONDS)
