"""A real replay with NOTIFY_IN_SIM=true notifying a loopback receiver through apprise's json:// scheme.

Aug-Sep 2015 (the August sell-off) on a small whole-share account with tight limits trips the daily-loss breaker and
the drawdown breaker. The receiver must get every fill the state DB recorded (by symbol and side) and exactly one
message per breaker trip the journal recorded.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from core.store import StateStore
from tests.state_db import journal_rows
from tests.tradingd.notify.receiver import receiver
from tradingd.cli import app

FILL_LINE = re.compile(r"^(buy|sell) (\S+) \S+ @ \S+$")


def _env(data_dir: Path, url: str) -> dict[str, str]:
    return {
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
        "USE_SCANNER": "false",
        "SIM_INITIAL_CASH": "5000",
        "ENABLE_FRACTIONAL_SHARES": "false",
        "MAX_OPEN_POSITIONS": "6",
        "STOP_MODE": "close",
        "MAX_DAILY_LOSS_PCT": "0.003",
        "MAX_DRAWDOWN_PCT": "0.025",
        "NOTIFY_URLS": url,
        "NOTIFY_IN_SIM": "true",
        "NOTIFY_EVENTS": "fill,rejected,breaker,kill_switch,daemon",
        "NOTIFY_RATE_LIMIT_PER_MINUTE": "6000",
    }


def _fills_in(messages: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for message in messages:
        if ": fill" in message["title"] or message["title"].endswith(" fills"):
            for line in message["message"].splitlines():
                match = FILL_LINE.match(line)
                if match:
                    found[(match.group(2), match.group(1))] += 1
    return found


def test_every_fill_and_one_message_per_breaker_trip(tmp_path: Path) -> None:
    with receiver() as hook:
        result = CliRunner().invoke(
            app, ["replay", "--start", "2015-08-01", "--end", "2015-09-30", "--json"], env=_env(tmp_path, hook.url)
        )
        assert result.exit_code == 0, result.output
        db = tmp_path / "sim" / "state.db"
        with StateStore(db) as store:
            fills = Counter((fill.symbol, fill.side.value) for fill in store.fills())
        trips = Counter(row["payload"]["breaker"] for row in journal_rows(db) if row["type"] == "CircuitBreakerTripped")
        assert fills
        assert set(trips) == {"daily_loss_limit", "max_drawdown"}

        def complete(messages: list[dict[str, Any]]) -> bool:
            return any("daemon stopped" in m["title"] for m in messages)

        assert hook.wait_for(complete)
        messages = hook.snapshot()
    assert _fills_in(messages) == fills
    tripped = Counter(
        re.sub(r".*circuit breaker tripped \((\w+)\)$", r"\1", m["title"])
        for m in messages
        if "circuit breaker tripped" in m["title"]
    )
    assert tripped == trips
    titles = [m["title"] for m in messages]
    assert titles[0] == "tradingd sim: daemon started"
    assert titles[-1] == "tradingd sim: daemon stopped (finished)"
