"""Domain value types shared by agents and adapters.

Vendor types never cross into the core: adapters convert Alpaca's strings/floats into these at the boundary.
Money and quantities are `Decimal`; bar arrays are float64 numpy (vectorised over symbols).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Final, TypeAlias

if TYPE_CHECKING:  # numpy is imported where arrays are made: `tradingd --help` needs the enums here, not numpy
    import numpy as np
    import numpy.typing as npt

FloatArray: TypeAlias = "npt.NDArray[np.float64]"

QTY_DECIMALS = 9
QTY_QUANTUM = Decimal(1).scaleb(-QTY_DECIMALS)
CENT = Decimal("0.01")


def bar_price(value: float) -> Decimal:
    """A bar's float64 price as exact money, via its shortest repr: 15.07 becomes Decimal('15.07'), not 15.0699999…

    Bars are float arrays for vectorised maths; this is where a price leaves them for a signal, a fill or a mark.
    """
    return Decimal(repr(float(value)))


class OrderSide(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderStatus(enum.StrEnum):
    # Written to the store before the broker call (write-ahead), never reported by a broker: until the broker's
    # answer is stored, a crash leaves this row for start-up recovery to look up by client order id.
    PENDING_SUBMIT = "pending_submit"
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def is_open(self) -> bool:
        return self in _OPEN_STATUSES


_OPEN_STATUSES = frozenset(
    {OrderStatus.PENDING_SUBMIT, OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED}
)

OPEN_STATUS_FILTER: Final = "open"  # a status filter's name for every status still working at the broker


def order_statuses_named(value: str) -> set[OrderStatus]:
    """A user's status filter (`tradingd orders --status`, `/api/orders?status=`): one status, or `open` for every
    open one. ValueError names the accepted values."""
    wanted = value.strip().lower()
    if wanted == OPEN_STATUS_FILTER:
        return set(_OPEN_STATUSES)
    try:
        return {OrderStatus(wanted)}
    except ValueError:
        accepted = ", ".join([OPEN_STATUS_FILTER, *(s.value for s in OrderStatus)])
        raise ValueError(f"{value[:40]!r} is not one of {accepted}") from None


class OrderType(enum.StrEnum):
    """What kind of order: the daemon's entries and exits are market orders, its protective stops sell stops."""

    MARKET = "market"
    STOP = "stop"  # sell when the price reaches `stop_price`
    TRAILING_STOP = "trailing_stop"  # sell when the price falls `trail_percent` below its high since placement


class TimeInForce(enum.StrEnum):
    DAY = "day"  # ends at the session's close (Alpaca allows fractional quantities only on these)
    GTC = "gtc"  # rests until filled or canceled (whole shares only)


class Tier(enum.StrEnum):
    TIER1 = "TIER1"
    TIER2 = "TIER2"
    TIER3 = "TIER3"


class TradingMode(enum.StrEnum):
    SIM = "sim"
    PAPER = "paper"
    LIVE = "live"


@dataclass(frozen=True, slots=True)
class BarFrame:
    """Bars of many symbols: arrays of shape (T, N), row t = `timestamps[t]`, column n = `symbols[n]`, oldest row
    first, NaN where there is no valid bar.

    The one bar type: a window on the bus (one frame per iteration; agents vectorise over its columns), an adapter's
    answer, and the whole bundled history a sim replay serves windows of. `timestamps` are bar *start* times (UTC,
    Alpaca's convention) as naive datetime64[ns], strictly increasing. Its builders guarantee the shapes: frames are
    made every iteration, and a check here would cost more than the replay's read of a row.
    """

    symbols: tuple[str, ...]
    timestamps: npt.NDArray[np.datetime64]
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    @property
    def n_rows(self) -> int:
        return int(self.close.shape[0])

    @property
    def timestamps_ns(self) -> npt.NDArray[np.int64]:
        """Timestamps as int64 nanoseconds since the epoch (UTC): what `np.searchsorted` compares cheaply."""
        return self.timestamps.view("int64")

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    def column(self, symbol: str) -> int:
        return self.symbols.index(symbol)

    @classmethod
    def empty(cls, symbols: tuple[str, ...]) -> BarFrame:
        import numpy as np  # noqa: PLC0415 - see the import at the top

        shape = (0, len(symbols))
        return cls(
            symbols=symbols,
            timestamps=np.empty(0, dtype="datetime64[ns]"),
            open=np.empty(shape),
            high=np.empty(shape),
            low=np.empty(shape),
            close=np.empty(shape),
            volume=np.empty(shape),
        )


@dataclass(frozen=True, slots=True)
class Asset:
    symbol: str
    tradable: bool
    fractionable: bool


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    market_price: Decimal

    @property
    def market_value(self) -> Decimal:
        return self.qty * self.market_price


@dataclass(frozen=True, slots=True)
class Account:
    equity: Decimal
    cash: Decimal
    buying_power: Decimal


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What we ask a broker to do. Exactly one of qty / notional is set."""

    client_order_id: str
    symbol: str
    side: OrderSide
    qty: Decimal | None = None
    notional: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    order_type: OrderType = OrderType.MARKET
    stop_price: Decimal | None = None  # OrderType.STOP only
    trail_percent: Decimal | None = None  # OrderType.TRAILING_STOP only, in percent (5 = 5%), as Alpaca takes it

    def __post_init__(self) -> None:
        if (self.qty is None) == (self.notional is None):
            raise ValueError("exactly one of qty or notional must be set")
        amount = self.qty if self.qty is not None else self.notional
        if amount is None or amount <= 0:
            raise ValueError(f"order amount must be positive, got {amount}")
        if (self.stop_price is not None) != (self.order_type is OrderType.STOP):
            raise ValueError("stop_price is set on stop orders and only on them")
        if (self.trail_percent is not None) != (self.order_type is OrderType.TRAILING_STOP):
            raise ValueError("trail_percent is set on trailing-stop orders and only on them")


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """An order as the broker knows it."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    side: OrderSide
    status: OrderStatus
    qty: Decimal | None
    notional: Decimal | None
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    submitted_at: datetime | None = None
    updated_at: datetime | None = None
    reason: str = ""
    order_type: OrderType = OrderType.MARKET
    time_in_force: TimeInForce = TimeInForce.DAY
    stop_price: Decimal | None = None  # a stop's trigger; a trailing stop's current level as the broker reports it
    trail_percent: Decimal | None = None

    @property
    def is_stop(self) -> bool:
        return self.order_type is not OrderType.MARKET

    @property
    def open_qty(self) -> Decimal:
        """What the order may still fill (a qty order's remaining shares; 0 for a notional order, sized in dollars)."""
        return max(self.qty - self.filled_qty, Decimal(0)) if self.qty is not None else Decimal(0)


@dataclass(frozen=True, slots=True)
class Fill:
    execution_id: str
    client_order_id: str
    symbol: str
    side: OrderSide
    qty: Decimal
    price: Decimal
    ts: datetime


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """A change in an order's state reported by the broker (stream or poll). `fill` is set for fills."""

    order: BrokerOrder
    ts: datetime
    fill: Fill | None = None


@dataclass(frozen=True, slots=True)
class PortfolioSnapshot:
    """What risk needs to know about the account at the start of an iteration."""

    account: Account
    positions: dict[str, Position] = field(default_factory=dict)
    open_orders: tuple[BrokerOrder, ...] = ()


class TradingState(enum.StrEnum):
    """What the daemon may do (README "Trading states"): the one definition every gate and display uses."""

    ACTIVE = "active"  # entries, exits and protective stops
    REDUCING = "reducing"  # exits and protective stops only
    HALTED = "halted"  # kill switch: no new orders at all

    @property
    def allows_entries(self) -> bool:
        return self is TradingState.ACTIVE

    @property
    def allows_exits(self) -> bool:
        return self is not TradingState.HALTED


def derive_trading_state(
    *, halted: bool, reduce_only: bool, daily_loss: bool, drawdown: bool, recovery: bool
) -> TradingState:
    """The state from the persisted conditions: the kill switch wins, any reducing condition blocks entries."""
    if halted:
        return TradingState.HALTED
    if reduce_only or daily_loss or drawdown or recovery:
        return TradingState.REDUCING
    return TradingState.ACTIVE
