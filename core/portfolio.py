"""The portfolio as the agents see it during one iteration: refreshed from the broker once, read by many.

Agents receive this view at construction (an explicit dependency) instead of each asking the broker, so one
iteration costs one account/positions/open-orders round trip whatever the number of agents.

Positions are the daemon's own: each broker position is capped at the quantity the daemon's fills account for
(`OwnedLedger`), so a holding the user bought by hand in the same account is never sized, exited or stop-lossed by
the daemon. Account equity and buying power stay account-wide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import Decimal

from core.broker.base import Broker
from core.order_ids import is_protective_stop_id
from core.types import Account, BrokerOrder, Fill, OrderSide, PortfolioSnapshot, Position


class OwnedLedger:
    """Net quantity per symbol bought minus sold by the daemon's own fills, and which entries made the holding: the
    buy fill that opened it (from flat) and the latest entry order (a protective stop's id derives from it)."""

    def __init__(self, fills: Iterable[Fill] = ()) -> None:
        self._qty: dict[str, Decimal] = {}
        self._opened: dict[str, Fill] = {}
        self._latest_entry: dict[str, str] = {}
        for fill in fills:
            self.apply(fill)

    def apply(self, fill: Fill) -> None:
        before = self.qty(fill.symbol)
        signed = fill.qty if fill.side is OrderSide.BUY else -fill.qty
        self._qty[fill.symbol] = before + signed
        if fill.side is OrderSide.BUY:
            self._latest_entry[fill.symbol] = fill.client_order_id
            if before <= 0:
                self._opened[fill.symbol] = fill

    def qty(self, symbol: str) -> Decimal:
        return self._qty.get(symbol, Decimal(0))

    def opened_by(self, symbol: str) -> Fill | None:
        """The buy fill that opened the current holding of `symbol` (None if the daemon never bought it)."""
        return self._opened.get(symbol)

    def latest_entry(self, symbol: str) -> str | None:
        """The client order id of the latest buy of `symbol` that filled."""
        return self._latest_entry.get(symbol)

    def own(self, positions: Mapping[str, Position]) -> dict[str, Position]:
        owned: dict[str, Position] = {}
        for symbol, position in positions.items():
            qty = min(position.qty, self.qty(symbol))
            if qty > 0:
                owned[symbol] = position if qty == position.qty else replace(position, qty=qty)
        return owned


class PortfolioView:
    def __init__(self, broker: Broker, ledger: OwnedLedger | None = None) -> None:
        self._broker = broker
        self.ledger = ledger if ledger is not None else OwnedLedger()
        self._snapshot = PortfolioSnapshot(account=Account(Decimal(0), Decimal(0), Decimal(0)))
        self._open_by_symbol: dict[str, list[BrokerOrder]] = {}

    async def refresh(self) -> PortfolioSnapshot:
        # Open orders before positions: an order filling in between shows up twice (conservative), never zero times.
        open_orders = tuple(await self._broker.get_open_orders())
        positions = self.ledger.own(await self._broker.get_positions())
        account = await self._broker.get_account()
        self._snapshot = PortfolioSnapshot(account=account, positions=positions, open_orders=open_orders)
        self._open_by_symbol = {}
        for order in open_orders:
            self._open_by_symbol.setdefault(order.symbol, []).append(order)
        return self._snapshot

    @property
    def snapshot(self) -> PortfolioSnapshot:
        return self._snapshot

    @property
    def positions(self) -> dict[str, Position]:
        return self._snapshot.positions

    def position(self, symbol: str) -> Position | None:
        return self._snapshot.positions.get(symbol)

    def has_open_order(self, symbol: str, side: OrderSide | None = None) -> bool:
        """An open order of `symbol` (of `side`) other than a protective stop: a resting stop is the position's
        cover, not a pending trade, and an exit cancels it first."""
        orders = self._open_by_symbol.get(symbol, ())
        return any(
            (side is None or order.side is side) and not is_protective_stop_id(order.client_order_id)
            for order in orders
        )

    def note_submitted(self, order: BrokerOrder) -> None:
        """An order placed during this iteration counts as open for the rest of it."""
        self._open_by_symbol.setdefault(order.symbol, []).append(order)
