"""Close requests in the state DB's flags: one row per target, kept across processes, the first request kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.close_requests import ALL, CloseRequest, CloseRequests
from core.flags import CLOSE_REQUEST_PREFIX
from core.order_ids import FLATTEN_EXIT_TAG, MANUAL_EXIT_TAG, client_order_id
from core.reasons import Breaker
from core.store import StateStore
from core.types import OrderSide
from tests.fakes.flags import MemoryFlagStore

T0 = datetime(2017, 8, 2, 14, 30, tzinfo=UTC)


def test_a_request_survives_the_process_that_wrote_it(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with StateStore(db) as cli:  # e.g. `tradingd close` while a daemon runs
        request, new = CloseRequests(cli).request("AAPL", tag=MANUAL_EXIT_TAG, reason="manual", now=T0)
    assert new
    with StateStore(db) as daemon:
        daemon.set_flag("closeXrequest:MSFT", "{}")  # `_` in the prefix means itself, not any character
        assert CloseRequests(daemon).pending() == [request]
        assert daemon.flags_with_prefix(CLOSE_REQUEST_PREFIX).keys() == {"close_request:AAPL"}


def test_asking_again_keeps_the_first_request_and_so_its_order_ids() -> None:
    requests = CloseRequests(MemoryFlagStore())
    first, _ = requests.request("AAPL", tag=MANUAL_EXIT_TAG, reason="manual", now=T0)
    again, new = requests.request("AAPL", tag=MANUAL_EXIT_TAG, reason="manual", now=T0 + timedelta(hours=1))
    assert not new
    assert again == first
    assert again.order_id("AAPL") == client_order_id(MANUAL_EXIT_TAG, "AAPL", OrderSide.SELL, T0)


def test_pending_lists_symbols_before_the_request_for_all_and_skips_garbage() -> None:
    flags = MemoryFlagStore()
    requests = CloseRequests(flags)
    requests.request(ALL, tag=FLATTEN_EXIT_TAG, reason="flatten: x", now=T0, breaker=Breaker.MAX_DRAWDOWN)
    requests.request("MSFT", tag=MANUAL_EXIT_TAG, reason="manual", now=T0)
    requests.request("AAPL", tag=MANUAL_EXIT_TAG, reason="manual", now=T0)
    flags.set_flag(CLOSE_REQUEST_PREFIX + "XOM", "not json")
    assert [r.target for r in requests.pending()] == ["AAPL", "MSFT", ALL]


def test_a_refusal_is_written_once_per_new_reason() -> None:
    flags = MemoryFlagStore()
    requests = CloseRequests(flags)
    request, _ = requests.request("AAPL", tag=MANUAL_EXIT_TAG, reason="manual", now=T0)
    writes = flags.writes
    requests.note_refused(request, "halted: kill switch engaged")
    noted = requests.get("AAPL")
    assert noted is not None
    assert noted.refused == "halted: kill switch engaged"
    requests.note_refused(noted, "halted: kill switch engaged")
    assert flags.writes == writes + 1


def test_withdrawing_a_breakers_flatten_leaves_the_rest() -> None:
    requests = CloseRequests(MemoryFlagStore())
    requests.request(ALL, tag=FLATTEN_EXIT_TAG, reason="flatten: x", now=T0, breaker=Breaker.DAILY_LOSS_LIMIT)
    manual, _ = requests.request("AAPL", tag=MANUAL_EXIT_TAG, reason="manual", now=T0)
    assert requests.withdraw_flatten(Breaker.MAX_DRAWDOWN) == []
    assert [r.target for r in requests.withdraw_flatten(Breaker.DAILY_LOSS_LIMIT)] == [ALL]
    assert requests.pending() == [manual]


def test_a_request_reads_back_as_written() -> None:
    request = CloseRequest(
        target=ALL, tag=FLATTEN_EXIT_TAG, reason="flatten: max_drawdown: …", requested_at=T0, breaker="max_drawdown"
    )
    flags = MemoryFlagStore()
    CloseRequests(flags).request(ALL, tag=request.tag, reason=request.reason, now=T0, breaker=request.breaker)
    assert CloseRequest.parse(ALL, flags.flags[request.flag]) == request
    assert CloseRequest.parse(ALL, '{"tag": "manual", "reason": "m", "requested_at": "2017-08-02T14:30:00"}') is None
