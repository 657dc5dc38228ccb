"""Fixtures shared by the CLI tests (`test_cli.py`, `test_cli_restore.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest

# Settings a developer's shell may export that would change what a command does in a test.
CLI_ENV_CLEARED = (
    "ALPACA_API_KEY",
    "ALPACA_SECRET_KEY",
    "TRADING_MODE",
    "SIM_START",
    "SIM_END",
    "BAR_TIMEFRAME",
    "RECOVERY_AUTO_RESUME",
)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A command run from `tmp_path` with DATA_DIR under it, JSON warnings-only logs, no keys and no mode."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    monkeypatch.setenv("LOG_FORMAT", "json")
    for name in CLI_ENV_CLEARED:
        monkeypatch.delenv(name, raising=False)
