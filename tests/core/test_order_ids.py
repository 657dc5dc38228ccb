from datetime import UTC, date, datetime

import pytest

from core.order_ids import (
    MAX_CLIENT_ORDER_ID,
    PROTECTIVE_STOP_TAG,
    STOP_PARTS,
    client_order_id,
    is_our_client_order_id,
    is_protective_stop_id,
    protective_stop_id,
    signal_correlation_id,
)
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
        ("zscore_mean_reversion", "GOOGLEXXLONG", OrderSide.BUY),  # both longer than the id has room for
    ]:
        coid = client_order_id(strategy, symbol, side, BAR_TS)
        assert len(coid) <= 48
        assert coid.startswith("td-")
        assert is_our_client_order_id(coid)
    ours = client_order_id("zscore_mr", "AAPL", OrderSide.BUY, BAR_TS)
    tampered = ours[:-1] + ("0" if ours[-1] != "0" else "1")
    for foreign in ["my-manual-order-1", "", "td-", tampered, ours.replace("AAPL", "MSFT"), ours.replace("-b-", "-s-")]:
        assert not is_our_client_order_id(foreign), foreign


def test_long_strategy_names_cut_to_fit_still_make_distinct_ids() -> None:
    a = client_order_id("mean_reversion_fast", "AAPL", OrderSide.BUY, BAR_TS)
    b = client_order_id("mean_reversion_slow", "AAPL", OrderSide.BUY, BAR_TS)
    assert a != b  # both cut to "mean_rever": the key digest keeps them apart


def test_ids_made_by_the_earlier_scheme_are_still_ours() -> None:
    # An order placed before the "td-" prefix, as that version named it (restored from an old backup, say).
    import hashlib  # noqa: PLC0415

    digest = hashlib.sha256(f"zscore_mr|AAPL|buy|{BAR_TS.isoformat()}".encode()).hexdigest()[:12]
    legacy = f"zscore_mr-AAPL-b-201603010500-{digest}"
    assert is_our_client_order_id(legacy)
    assert not is_our_client_order_id(legacy[:-1] + ("0" if legacy[-1] != "0" else "1"))


def test_the_correlation_id_names_the_signal() -> None:
    assert signal_correlation_id("zscore_mr", "AAPL", OrderSide.BUY, BAR_TS) == "zscore_mr:AAPL:buy:20160301T0500"
    assert signal_correlation_id("zscore_mr", "AAPL", OrderSide.SELL, BAR_TS) != signal_correlation_id(
        "zscore_mr", "AAPL", OrderSide.BUY, BAR_TS
    )


def test_protective_stop_ids_are_fresh_per_placement_and_recognised() -> None:
    anchor = client_order_id("zscore", "BRK-B", OrderSide.BUY, datetime(2017, 8, 1, 20, tzinfo=UTC))
    ids = {
        protective_stop_id("BRK-B", anchor, session, part, seq)
        for session in (date(2017, 8, 2), date(2017, 8, 3))
        for part in STOP_PARTS
        for seq in (1, 2)
    }
    assert len(ids) == 8  # session, part and sequence each make a new id: Alpaca refuses a reused one
    assert all(is_protective_stop_id(coid) and is_our_client_order_id(coid) for coid in ids)
    assert all(len(coid) <= MAX_CLIENT_ORDER_ID for coid in ids)
    other = protective_stop_id("BRK-B", anchor + "x", date(2017, 8, 2), "g", 1)
    assert other not in ids  # a new entry (a resize) gives a new id


def test_a_strategy_order_is_never_taken_for_a_protective_stop() -> None:
    entry = client_order_id(PROTECTIVE_STOP_TAG, "AAPL", OrderSide.SELL, datetime(2017, 8, 1, tzinfo=UTC))
    assert is_our_client_order_id(entry)
    assert not is_protective_stop_id(entry)
    forged = protective_stop_id("AAPL", "a", date(2017, 8, 2), "g", 1)[:-1] + "0"
    assert not is_protective_stop_id(forged)
    with pytest.raises(ValueError, match="part"):
        protective_stop_id("AAPL", "a", date(2017, 8, 2), "x", 1)
