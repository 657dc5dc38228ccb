"""Why a position was sold: one `ExitReason` per exit order, decided when the order is staged and stored with it.

The orders table's `strategy` column is the order's tag, and the client order id derives from it, so the tag of a
strategy's own exit cannot say whether it was the strategy's signal or `STOP_MODE=close`'s close-based stop-loss (both
carry the strategy's tag). The reason is therefore its own column (`orders.exit_reason`, schema 5), written at
staging from the tag and the signal's reason; the report's ledger reads it (older rows without one fall back to the
tag alone).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

from core.order_ids import FLATTEN_EXIT_TAG, MANUAL_EXIT_TAG, PROTECTIVE_STOP_TAG, STOP_EXIT_TAG


class ExitReason(enum.StrEnum):
    SIGNAL = "signal"  # the strategy's own exit signal
    STOP_LOSS = "stop_loss"  # a protective stop (`ps`), the intraday stop check (`stop`), or the close-based stop-loss
    BREAKER = "breaker"  # a breaker's flatten (`flatten`)
    MANUAL = "manual"  # `tradingd close` (`manual`), or a sell the daemon did not place


# The scanner's close-based stop-loss signal (`STOP_MODE=close`) starts its reason with this.
STOP_LOSS_SIGNAL_PREFIX: Final = "stop_loss:"

_BY_TAG: Final[Mapping[str, ExitReason]] = {
    PROTECTIVE_STOP_TAG: ExitReason.STOP_LOSS,
    STOP_EXIT_TAG: ExitReason.STOP_LOSS,
    FLATTEN_EXIT_TAG: ExitReason.BREAKER,
    MANUAL_EXIT_TAG: ExitReason.MANUAL,
}


def exit_reason_of(tag: str | None, signal_reason: str = "") -> ExitReason:
    """The reason of an exit order with this tag, made for a signal with this reason. No tag: an order the store
    has no row for (placed outside the daemon, e.g. in the broker's web UI), so manual."""
    if tag is None:
        return ExitReason.MANUAL
    by_tag = _BY_TAG.get(tag)
    if by_tag is not None:
        return by_tag
    return ExitReason.STOP_LOSS if signal_reason.startswith(STOP_LOSS_SIGNAL_PREFIX) else ExitReason.SIGNAL
