"""An exit order's reason from its tag and its signal's reason."""

from __future__ import annotations

from core.exit_reasons import STOP_LOSS_SIGNAL_PREFIX, ExitReason, exit_reason_of


def test_the_reserved_tags_name_their_reason() -> None:
    assert exit_reason_of("ps") is ExitReason.STOP_LOSS  # a protective stop at the broker
    assert exit_reason_of("stop") is ExitReason.STOP_LOSS  # the intraday stop check
    assert exit_reason_of("flatten") is ExitReason.BREAKER
    assert exit_reason_of("manual") is ExitReason.MANUAL
    assert exit_reason_of(None) is ExitReason.MANUAL  # an order the store never had: placed outside the daemon


def test_a_strategys_exit_is_a_signal_unless_it_is_the_close_based_stop_loss() -> None:
    assert exit_reason_of("zscore_mr", "zscore 0.10 >= exit 0.00") is ExitReason.SIGNAL
    assert exit_reason_of("zscore_mr", f"{STOP_LOSS_SIGNAL_PREFIX} close 90.00 <= 92.15") is ExitReason.STOP_LOSS
    # The tag wins: a manual close is manual whatever its text says.
    assert exit_reason_of("manual", f"{STOP_LOSS_SIGNAL_PREFIX} text") is ExitReason.MANUAL
