"""The two ports every adapter implements: `Broker` (orders, account) and `MarketData` (bars, snapshots).

The sim adapters and the Alpaca adapters implement the same protocols; the pipeline never knows which one it has.
Methods are async: the Alpaca adapters push their blocking SDK calls to a thread, the sim adapters return at once.
Batching is the adapters' job: callers pass every symbol at once, and a `MarketData` adapter splits them into requests
of `DATA_CHUNK_SIZE` symbols (the sim counts its reads the same way), so no caller chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from core.reasons import RejectionReason
from core.types import Account, Asset, BarFrame, BrokerOrder, FloatArray, OrderRequest, OrderUpdate, Position


class BrokerError(Exception):
    """Base of every error an adapter raises."""


class TransientBrokerError(BrokerError):
    """Worth retrying later (429, 5xx, timeouts, resets)."""


class OrderRejectedError(BrokerError):
    """The broker refused the order for good (insufficient buying power, not fractionable, …)."""

    def __init__(self, reason: RejectionReason, message: str = "") -> None:
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason
        self.message = message


class AuthenticationError(BrokerError):
    """Bad keys: the daemon must stop with a clear message."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Latest daily state of one symbol (what the scanner pre-ranks on)."""

    symbol: str
    price: float
    prev_close: float
    volume: float
    ts: datetime


@dataclass(frozen=True, slots=True)
class SnapshotColumns:
    """Snapshots of many symbols as arrays aligned with the symbols asked for: the scan's fast path for an adapter
    that holds its data as arrays (the sim replay), instead of one `Snapshot` object per symbol."""

    present: npt.NDArray[np.bool_]
    price: FloatArray  # NaN where absent
    prev_close: FloatArray
    volume: FloatArray
    ts_ns: npt.NDArray[np.int64]  # 0 where absent


@runtime_checkable
class SnapshotArraySource(Protocol):
    """Optional on a `MarketData`: `get_snapshots` as arrays (one request per chunk of symbols, counted the same)."""

    async def get_snapshot_columns(self, symbols: Sequence[str]) -> SnapshotColumns: ...


# on_progress(symbols_done, symbols_total), after each request of a batched download.
Progress = Callable[[int, int], None]


@runtime_checkable
class MarketData(Protocol):
    async def get_bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, *, on_progress: Progress | None = None
    ) -> BarFrame:
        """Bars with start <= ts < end for all symbols, one request per chunk of symbols (never one per symbol);
        `on_progress` is told after each request (a whole-market download takes a while)."""
        ...

    async def get_snapshots(self, symbols: Sequence[str]) -> dict[str, Snapshot]:
        """Latest snapshot for each symbol that has one (one request per chunk of symbols); missing symbols are
        simply absent."""
        ...

    @property
    def api_calls(self) -> int:
        """Requests made so far (pages count one each); sim counts its batched reads."""
        ...


@runtime_checkable
class Broker(Protocol):
    async def get_account(self) -> Account:
        """Equity, cash, and buying power = cash available for new orders: no margin, net of open orders."""
        ...

    async def get_positions(self) -> dict[str, Position]: ...

    async def get_asset(self, symbol: str) -> Asset | None:
        """None when the broker does not know the symbol."""
        ...

    async def submit_order(self, request: OrderRequest) -> BrokerOrder:
        """Place an order idempotently (same client order id → same order). Raises OrderRejectedError."""
        ...

    async def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None: ...

    async def get_order(self, client_order_id: str) -> BrokerOrder | None:
        """Recovery lookup: the order under this client order id in whatever state (None: the broker never saw it).
        An open one is followed from then on, so its later changes come out of `poll_updates`."""
        ...

    async def get_open_orders(self) -> list[BrokerOrder]: ...

    async def list_closed_orders(self, after: datetime | None) -> list[BrokerOrder]:
        """Every final order submitted after `after` (None: ever), oldest first, whoever placed it: recovery's
        second net for ours the store has no row for."""
        ...

    async def cancel_order(self, client_order_id: str) -> None: ...

    async def poll_updates(self) -> list[OrderUpdate]:
        """Order state changes (fills, cancels, expiries) since the last call, oldest first."""
        ...
