"""The portfolio as the agents see it during one iteration: refreshed from the broker once, read by many.

Agents receive this view at construction (an explicit dependency) instead of each asking the broker, so one
iteration costs one account/positions/open-orders round trip whatever the number of agents.
"""

from __future__ import annotations

from decimal import Decimal

from core.broker.base import Broker
from core.types import Account, BrokerOrder, OrderSide, PortfolioSnapshot, Position


class PortfolioView:
    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._snapshot = PortfolioSnapshot(account=Account(Decimal(0), Decimal(0), Decimal(0)))
        self._open_by_symbol: dict[str, list[BrokerOrder]] = {}

    async def refresh(self) -> PortfolioSnapshot:
        account = await self._broker.get_account()
        positions = await self._broker.get_positions()
        open_orders = tuple(await self._broker.get_open_orders())
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
        orders = self._open_by_symbol.get(symbol, ())
        return any(side is None or order.side is side for order in orders)

    def note_submitted(self, order: BrokerOrder) -> None:
        """An order placed during this iteration counts as open for the rest of it."""
        self._open_by_symbol.setdefault(order.symbol, []).append(order)
