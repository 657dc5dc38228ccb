from datetime import UTC, datetime

from core.order_ids import client_order_id, is_our_client_order_id, signal_correlation_id
from core.types import OrderSide

BAR_TS = datetime(2016, 3, 1, 5, tzinfo=UTC)


def test_client_order_id_is_deterministic_and_distinct() -> None:
    a = client_order_id("zscore_mr", "AAPL", OrderSide.BUY, BAR_TS)
    assert a == client_order_id("zscore_mr", "AAPL", OrderSide.BUY, BAR_TS)
    assert a != client_order_id("zscore_mr", "AAPL", OrderSide.SELL, BAR_TS)
    assert a != client_order_id("zscore_mr", "MSFT", OrderSide.BUY, BAR_TS)
    assert a != client_order_id("zscore_mr", "AAPL", OrderSide.BUY, BAR_TS.replace(day=2))
    assert len(a) <= 48


def test_our_client_order_ids_are_recognised_without_the_store() -> None:
    for strategy, symbol, side in [
        ("zscore_mr", "AAPL", OrderSide.BUY),
        ("zscore_mr", "BRK.B", OrderSide.SELL),
        ("mean-rev-abc", "GOOGLEXX", OrderSide.BUY),  # both at their longest: the id is cut to 48 chars
    ]:
        coid = client_order_id(strategy, symbol, side, BAR_TS)
        assert len(coid) <= 48
        assert is_our_client_order_id(coid)
    ours = client_order_id("zscore_mr", "AAPL", OrderSide.BUY, BAR_TS)
    tampered = ours[:-1] + ("0" if ours[-1] != "0" else "1")
    for foreign in ["my-manual-order-1", "", tampered, ours.replace("AAPL", "MSFT"), ours.replace("-b-", "-x-")]:
        assert not is_our_client_order_id(foreign), foreign


def test_the_correlation_id_names_the_signal() -> None:
    assert signal_correlation_id("zscore_mr", "AAPL", OrderSide.BUY, BAR_TS) == "zscore_mr:AAPL:buy:20160301T0500"
    assert signal_correlation_id("zscore_mr", "AAPL", OrderSide.SELL, BAR_TS) != signal_correlation_id(
        "zscore_mr", "AAPL", OrderSide.BUY, BAR_TS
    )
