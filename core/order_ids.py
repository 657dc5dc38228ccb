"""Identity of one trade idea, from its signal to its fills: the correlation id and the client order id.

Both are pure functions of what the signal is (strategy, symbol, side, the bar it saw), so they need no store: a
retry, a crash or a restart that approves the same signal again produces the same client order id, which the store
and the broker both refuse to place twice, and any message about the order can name the signal it came from.

The risk agent computes the client order id once, when it approves (`OrderApproved.client_order_id`); execution and
the broker only carry it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from core.types import OrderSide

MAX_CLIENT_ORDER_ID = 48  # Alpaca allows 128; short ids keep logs readable


def signal_correlation_id(strategy: str, symbol: str, side: OrderSide, bar_ts: datetime) -> str:
    """The correlation id every message about this signal carries, up to the fills of its order."""
    return f"{strategy}:{symbol}:{side.value}:{bar_ts:%Y%m%dT%H%M}"


def client_order_id(strategy: str, symbol: str, side: OrderSide, bar_ts: datetime) -> str:
    """Deterministic id: the same signal always maps to the same order."""
    key = f"{strategy}|{symbol}|{side.value}|{bar_ts.isoformat()}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{strategy[:12]}-{symbol[:8]}-{side.value[0]}-{bar_ts:%Y%m%d%H%M}-{digest}"[:MAX_CLIENT_ORDER_ID]


_SIDES = {side.value[0]: side for side in OrderSide}


def is_our_client_order_id(coid: str) -> bool:
    """Whether `coid` is one `client_order_id` made: recomputed from the parts it names, digest included.

    Works without the store (after a state loss), so recovery adopts only this daemon's orders, never a manual one
    in the same account. Bar times are UTC minute starts, which the id's `%Y%m%d%H%M` names exactly. An id whose
    strategy (> 12 chars) or symbol (> 8) was cut short cannot be recomputed and reads as not ours.
    """
    parts = coid.rsplit("-", 4)  # from the right: a strategy name may itself contain "-"
    if len(parts) != 5:
        return False
    strategy, symbol, side, stamp, _digest = parts
    if side not in _SIDES or len(stamp) != 12 or not stamp.isdigit():
        return False
    try:
        bar_ts = datetime.strptime(stamp, "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return False
    return client_order_id(strategy, symbol, _SIDES[side], bar_ts) == coid
