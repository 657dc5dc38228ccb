"""What the Alpaca adapters are built with: one account's connection and the market-data adapter's bar options.

Small frozen values instead of the whole `Settings`: the wiring reads them from the settings
(`tradingd/configs.py`), so core never imports the config package, and a test or benchmark builds exactly what an
adapter uses. No alpaca-py here: the wiring builds these without importing the SDK (sim never loads it).

The keys stay `SecretStr` (masked in any repr, so a logged or printed connection shows no secret) until an adapter
builds its SDK client, the one place that needs them in clear; the adapters register them with `core/redact.py`
first, whoever built the connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr


@dataclass(frozen=True, slots=True, kw_only=True)
class AlpacaConnection:
    """One Alpaca account: its keys, paper or live, the endpoints (None: the SDK's own for paper or live), the HTTP
    timeout and the request rates its plan allows."""

    api_key: SecretStr | None
    secret_key: SecretStr | None
    paper: bool
    trading_url: str | None = None
    data_url: str | None = None
    stream_url: str | None = None  # trade_updates websocket; None: next to `trading_url`, else the SDK's
    http_timeout_seconds: float
    trading_rate_limit_per_min: int
    data_rate_limit_per_min: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AlpacaDataOptions:
    """Which bars the market-data adapter asks for, how many symbols a request carries, and where it caches them."""

    timeframe: str  # "1Day", "15Min" or "1Min"
    feed: str  # "iex" or "sip"
    chunk_size: int
    bar_cache_path: Path
