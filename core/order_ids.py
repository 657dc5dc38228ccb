"""Identity of one trade idea, from its signal to its fills: the correlation id and the client order id.

Both are pure functions of what the signal is (strategy, symbol, side, the bar it saw), so they need no store: a
retry, a crash or a restart that approves the same signal again produces the same client order id, which the store
and the broker both refuse to place twice, and any message about the order can name the signal it came from.

The risk agent computes the client order id once, when it approves (`OrderApproved.client_order_id`); execution and
the broker only carry it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from functools import lru_cache

from core.types import OrderSide

MAX_CLIENT_ORDER_ID = 48  # Alpaca allows 128; short ids keep logs readable


def signal_correlation_id(strategy: str, symbol: str, side: OrderSide, bar_ts: datetime) -> str:
    """The correlation id every message about this signal carries, up to the fills of its order."""
    return f"{strategy}:{symbol}:{side.value}:{bar_ts:%Y%m%dT%H%M}"


CLIENT_ORDER_ID_PREFIX = "td"  # every id this daemon makes starts "td-"; a digest proves the rest


def _hex(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@lru_cache(maxsize=256)
def _utc_minute(bar_ts: datetime) -> str:
    # An iteration's signals share one bar time: formatted once, not once per order. Keyed by the instant (equal
    # instants in different zones are equal keys), which is all a UTC stamp depends on.
    return f"{bar_ts.astimezone(UTC):%Y%m%d%H%M}"


def client_order_id(strategy: str, symbol: str, side: OrderSide, bar_ts: datetime) -> str:
    """Deterministic id: the same signal always maps to the same order.

    `td-<strategy>-<symbol>-<b|s>-<bar minute UTC>-<key><check>`, at most 48 characters. Strategy and symbol are
    cut to fit, so `key` (5 hex of the full signal key) keeps two long names apart, and `check` (5 hex over
    everything before it) lets `is_our_client_order_id` prove an id is ours from the id alone, after a state loss.
    """
    stamp = _utc_minute(bar_ts)
    key = _hex(f"{strategy}|{symbol}|{side.value}|{stamp}", 5)
    body = f"{CLIENT_ORDER_ID_PREFIX}-{strategy[:10]}-{symbol[:8]}-{side.value[0]}-{stamp}-{key}"
    return body + _hex(body, 5)


PROTECTIVE_STOP_TAG = "ps"  # `td-ps-…`: a protective stop's id
# The tags of exits no strategy makes: a protective stop, the intraday stop check, `tradingd close`, a breaker's
# flatten. No strategy may take one (the registry refuses it), so an id says who made the order.
STOP_EXIT_TAG = "stop"
MANUAL_EXIT_TAG = "manual"
FLATTEN_EXIT_TAG = "flatten"
RESERVED_ORDER_TAGS = frozenset({PROTECTIVE_STOP_TAG, STOP_EXIT_TAG, MANUAL_EXIT_TAG, FLATTEN_EXIT_TAG})
STOP_PARTS = ("g", "d")  # the GTC whole-share part, the DAY part (fractional, or all of a re-placed DAY stop)


@lru_cache(maxsize=1 << 10)  # the plan asks its first-choice ids in one batch, then makes them
def protective_stop_id(symbol: str, anchor: str, session: date, part: str, seq: int) -> str:
    """The client order id of a protective stop: `td-ps-<symbol>-<part><seq>-<session yymmdd>-<key><check>`.

    Derived from the id of the entry order the stop protects (`anchor`: its key names the position's current entry,
    so adding to a position gives its resized stop a new id) and made fresh per placement: Alpaca refuses a client
    order id used before, even by a canceled order, so a re-placed stop (a DAY stop each session, a resize, a stop
    re-created after a cancel) carries its session and a sequence number. `seq` counts placements of this anchor,
    part and session from 1.
    """
    if part not in STOP_PARTS:
        raise ValueError(f"stop part must be one of {STOP_PARTS}, got {part!r}")
    if not 1 <= seq <= 999:
        raise ValueError(f"stop sequence must be in [1, 999], got {seq}")
    key = _hex(f"{anchor}|{symbol}|{part}|{seq}|{session.isoformat()}", 5)
    body = f"{CLIENT_ORDER_ID_PREFIX}-{PROTECTIVE_STOP_TAG}-{symbol[:8]}-{part}{seq}-{session:%y%m%d}-{key}"
    return body + _hex(body, 5)


@lru_cache(maxsize=1 << 14)  # asked of every open order at every stop step and invariant check
def is_protective_stop_id(coid: str) -> bool:
    """Whether `coid` is a protective stop's id this daemon made (from the id alone, like `is_our_client_order_id`)."""
    parts = coid.rsplit("-", 3)  # from the right: a symbol may itself contain "-"
    return (
        len(parts) == 4
        and parts[0].startswith(f"{CLIENT_ORDER_ID_PREFIX}-{PROTECTIVE_STOP_TAG}-")
        and parts[1][:1] in STOP_PARTS
        and parts[1][1:].isdigit()
        and len(parts[2]) == 6
        and parts[2].isdigit()
        and is_our_client_order_id(coid)
    )


def _legacy_client_order_id(strategy: str, symbol: str, side: OrderSide, bar_ts: datetime) -> str:
    """The scheme before the "td-" prefix (orders placed by earlier versions; recognised, never made)."""
    key = f"{strategy}|{symbol}|{side.value}|{bar_ts.isoformat()}"
    digest = _hex(key, 12)
    return f"{strategy[:12]}-{symbol[:8]}-{side.value[0]}-{bar_ts:%Y%m%d%H%M}-{digest}"[:MAX_CLIENT_ORDER_ID]


_SIDES = {side.value[0]: side for side in OrderSide}


@lru_cache(maxsize=1 << 14)  # a digest per call, asked of the same open orders at every iteration
def is_our_client_order_id(coid: str) -> bool:
    """Whether `coid` is one this daemon made, checked from the id alone (works without the store, after a state
    loss), so recovery adopts only this daemon's orders, never a manual one in the same account."""
    if coid.startswith(f"{CLIENT_ORDER_ID_PREFIX}-"):
        body, check = coid[:-5], coid[-5:]
        return len(coid) <= MAX_CLIENT_ORDER_ID and _hex(body, 5) == check
    return _is_legacy_id(coid)


def _is_legacy_id(coid: str) -> bool:
    # Recomputed from the parts it names; an id whose strategy (> 12 chars) or symbol (> 8) was cut short cannot be
    # recomputed and reads as not ours.
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
    return _legacy_client_order_id(strategy, symbol, _SIDES[side], bar_ts) == coid
