"""Why something was refused or stopped: every reason code a message carries, one enum per kind of answer.

Tests, the journal, the replay summary and `tradingd status` key on these values, so a value never changes meaning;
the enums are `StrEnum`s, so a code reads (and serialises) as its plain string. One place for all of them keeps the
sim and the Alpaca adapter from drifting into two spellings of the same refusal.
"""

from __future__ import annotations

import enum


class SignalRejectReason(enum.StrEnum):
    """`SignalRejected`: the validator's answer, before risk sees the signal."""

    FUTURE_BAR = "future_bar"
    STALE_SIGNAL = "stale_signal"
    INVALID_PRICE = "invalid_price"
    UNKNOWN_SYMBOL = "unknown_symbol"
    NOT_TRADABLE = "not_tradable"
    DUPLICATE_OPEN_ORDER = "duplicate_open_order"
    DUPLICATE_POSITION = "duplicate_position"
    NO_POSITION = "no_position"
    DUPLICATE_SIGNAL = "duplicate_signal"


class DenialReason(enum.StrEnum):
    """`OrderDenied`: the risk agent's answer (the trading state's, the pre-checks', the sizer's)."""

    HALTED = "halted"
    REDUCE_ONLY = "reduce_only"  # `tradingd halt --reduce-only`
    RECOVERY = "recovery"  # the state DB was lost, set aside or restored: entries wait for `tradingd resume`
    DAILY_LOSS_LIMIT = "daily_loss_limit"
    MAX_DRAWDOWN = "max_drawdown"
    MAX_OPEN_POSITIONS = "max_open_positions"
    TIER_BUDGET_EXHAUSTED = "tier_budget_exhausted"
    MAX_POSITION_PCT = "max_position_pct"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    ZERO_SHARES = "zero_shares"
    INSUFFICIENT_BUYING_POWER = "insufficient_buying_power"
    NO_POSITION = "no_position"
    POSITION_EXISTS = "position_exists"
    ORDER_PENDING = "order_pending"
    NOT_TRADABLE = "not_tradable"
    INVALID_PRICE = "invalid_price"
    SHORT_NOT_SUPPORTED = "short_not_supported"
    OVERSELL = "oversell"  # a protective stop that would make the symbol's open sells exceed what is owned
    ML_LOW_PROBABILITY = "ml_low_probability"  # ML_ENABLED: the model's win probability is below ML_MIN_WIN_PROB
    ML_UNAVAILABLE = "ml_unavailable"  # ML_ENABLED in paper/live: the model's history could not be fetched (yet)


class TradingStateReason(enum.StrEnum):
    """Why the trading state is what it is (`TradingStateChanged`, `tradingd status`), most severe first.

    The values of the causes are the denial codes an entry gets while they hold.
    """

    HALTED = "halted"
    DAILY_LOSS_LIMIT = "daily_loss_limit"
    MAX_DRAWDOWN = "max_drawdown"
    REDUCE_ONLY = "reduce_only"
    RECOVERY = "recovery"
    CLEARED = "cleared"  # nothing holds trading back any more: a resume, or the session after a daily-loss trip

    @property
    def denial(self) -> DenialReason:
        return DenialReason(self.value)


class Breaker(enum.StrEnum):
    """`CircuitBreakerTripped`: the limits that trip on their own (the kill switch is an operator's act)."""

    DAILY_LOSS_LIMIT = "daily_loss_limit"
    MAX_DRAWDOWN = "max_drawdown"


class RejectionReason(enum.StrEnum):
    """`OrderRejected`: a broker (sim or Alpaca) refused an order, or the execution agent could not place it."""

    UNKNOWN_ASSET = "unknown_asset"
    NOT_TRADABLE = "not_tradable"
    NOT_FRACTIONABLE = "not_fractionable"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    INVALID_QTY = "invalid_qty"
    INVALID_NOTIONAL = "invalid_notional"
    INSUFFICIENT_QTY = "insufficient_qty"
    INSUFFICIENT_BUYING_POWER = "insufficient_buying_power"
    SHORT_NOT_ALLOWED = "short_not_allowed"
    PATTERN_DAY_TRADING = "pattern_day_trading"
    TIME_IN_FORCE = "time_in_force"  # a market order that is not DAY; a GTC order for a fractional qty
    # Stops (`core/broker/order_shape.py`; Alpaca's words mapped alike): the daemon's stops are protective sells of a
    # qty, at a price on the tick, trailing only whole shares by a percent below 100.
    STOP_SIDE = "stop_side"
    STOP_NOTIONAL = "stop_notional"
    INVALID_STOP_PRICE = "invalid_stop_price"
    FRACTIONAL_TRAILING_STOP = "fractional_trailing_stop"
    INVALID_TRAIL_PERCENT = "invalid_trail_percent"
    UNKNOWN_ORDER = "unknown_order"
    NOT_CANCELABLE = "not_cancelable"
    # A refusal the broker gave no recognisable words for: its HTTP status (the message goes in the detail).
    HTTP_400 = "http_400"
    HTTP_403 = "http_403"
    HTTP_404 = "http_404"
    HTTP_422 = "http_422"
    REJECTED = "rejected"  # anything else the broker refused
    BROKER_UNAVAILABLE = "broker_unavailable"  # ambiguous: retries ran out; recovery asks the broker later

    @classmethod
    def parse(cls, text: str) -> RejectionReason:
        """A reason a broker recorded on an order (store text, sim note); unknown text reads as `rejected`."""
        try:
            return cls(text)
        except ValueError:
            return cls.REJECTED


class CancelReason(enum.StrEnum):
    """`OrderCanceled`: why an order ended without (more) fills."""

    CANCELED = "canceled"
    EXPIRED = "expired"
    NO_BAR = "no_bar"  # sim: no tradable open on the fill bar, so the day order expired
    NEVER_SUBMITTED = "never_submitted"  # recovery: written ahead, never seen by the broker
    REPLACED = "replaced"  # Alpaca: the one vendor status our `canceled` folds in, kept as the reason
    OTHER = "other"  # a note no code above names (the event's detail keeps its text)

    @classmethod
    def parse(cls, text: str, *, fallback: CancelReason) -> CancelReason:
        """A broker's note on a closed order; no note means the order's own status (`fallback`)."""
        if not text:
            return fallback
        try:
            return cls(text)
        except ValueError:
            return cls.OTHER


class StopReason(enum.StrEnum):
    """Why a protective stop is placed (`StopPlaced`) or canceled (`StopCancelRequested`)."""

    UNCOVERED = "uncovered"  # no resting stop covers this part of the position (new, expired DAY, lost)
    RESIZED = "resized"  # the position (or its level) changed: the old stop goes, a new one replaces it
    ORPHAN = "orphan"  # no position left for the stop to protect
    EXCESS = "excess"  # more stop than the position has room for (a duplicate, or another sell is open)
    EXIT = "exit"  # canceled before an exit of the same shares (cancel-before-exit)


class ExitWithheldReason(enum.StrEnum):
    """`ExitWithheld`: an approved exit execution did not send (yet)."""

    STOP_FILLED = "stop_filled"  # the position's stop sold the shares first: nothing is left to exit
    CANCEL_UNCONFIRMED = "cancel_unconfirmed"  # the stop's cancel is not confirmed: retried next iteration


class FillNote(enum.StrEnum):
    """A note a broker adds to a filled order."""

    REDUCED_TO_BUYING_POWER = "reduced_to_buying_power"  # sim: the open was dearer than the cash left
