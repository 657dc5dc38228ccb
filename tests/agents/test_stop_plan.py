from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime
from decimal import ROUND_FLOOR, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.oversell import oversells
from agents.stop_plan import (
    Holding,
    StopPlan,
    fresh_stop_id,
    is_resting_stop,
    plan_stops,
    stop_part,
)
from core.order_ids import client_order_id, is_protective_stop_id, protective_stop_id
from core.reasons import StopReason
from core.types import BrokerOrder, OrderSide, OrderStatus, OrderType, Position, TimeInForce

D = Decimal
SESSION = date(2017, 8, 2)
NEXT = date(2017, 8, 3)
ENTRY = client_order_id("zscore_mr", "AAPL", OrderSide.BUY, datetime(2017, 8, 1, 4, tzinfo=UTC))
EXIT_ID = client_order_id("zscore_mr", "AAPL", OrderSide.SELL, datetime(2017, 8, 2, 4, tzinfo=UTC))


def holding(qty: str, level: str = "95.00", *, fractional: bool = True, anchor: str = ENTRY) -> Holding:
    return Holding("AAPL", D(qty), D(level), fractional, anchor)


def resting(coid: str, qty: str, *, stop: str | None = "95.00", trail: str | None = None, **kw: object) -> BrokerOrder:
    kind = OrderType.TRAILING_STOP if trail is not None else OrderType.STOP
    return BrokerOrder(
        client_order_id=coid,
        broker_order_id=f"b-{coid}",
        symbol=str(kw.get("symbol", "AAPL")),
        side=OrderSide.SELL,
        status=kw.get("status", OrderStatus.ACCEPTED),  # type: ignore[arg-type]
        qty=D(qty),
        notional=None,
        filled_qty=D(str(kw.get("filled", "0"))),
        order_type=kind,
        time_in_force=TimeInForce.GTC if stop_part(coid) == "g" else TimeInForce.DAY,
        stop_price=D(stop) if stop is not None and trail is None else None,
        trail_percent=D(trail) if trail is not None else None,
    )


def plan(holdings: dict[str, Holding], orders: list[BrokerOrder], *, trail: str | None = None, used=()) -> StopPlan:  # type: ignore[no-untyped-def]
    used_ids = set(used) | {o.client_order_id for o in orders}
    return plan_stops(
        holdings, orders, trail_percent=D(trail) if trail else None, session=SESSION, is_used=used_ids.__contains__
    )


def gtc_id(seq: int = 1, anchor: str = ENTRY, session: date = SESSION) -> str:
    return protective_stop_id("AAPL", anchor, session, "g", seq)


def day_id(seq: int = 1, anchor: str = ENTRY, session: date = SESSION) -> str:
    return protective_stop_id("AAPL", anchor, session, "d", seq)


def test_a_fractional_position_is_covered_by_a_gtc_stop_for_its_whole_shares_and_a_day_stop_for_the_rest() -> None:
    result = plan({"AAPL": holding("191.75")}, [])
    gtc, day = result.placements
    assert (gtc.qty, gtc.time_in_force, gtc.order_type, gtc.stop_price) == (
        D(191),
        TimeInForce.GTC,
        OrderType.STOP,
        D("95.00"),
    )
    assert (day.qty, day.time_in_force, day.order_type, day.stop_price) == (
        D("0.75"),
        TimeInForce.DAY,
        OrderType.STOP,
        D("95.00"),
    )
    assert (gtc.client_order_id, day.client_order_id) == (gtc_id(), day_id())
    assert {p.reason for p in result.placements} == {StopReason.UNCOVERED}
    assert result.cancels == ()
    request = gtc.request()
    assert (request.side, request.qty, request.notional) == (OrderSide.SELL, D(191), None)


def test_a_non_fractionable_asset_gets_whole_shares_only_and_less_than_a_share_gets_a_day_stop_only() -> None:
    assert [p.qty for p in plan({"AAPL": holding("12.5", fractional=False)}, []).placements] == [D(12)]
    [day] = plan({"AAPL": holding("0.4")}, []).placements
    assert (day.qty, day.time_in_force) == (D("0.4"), TimeInForce.DAY)


def test_trailing_mode_trails_the_whole_shares_at_the_broker_and_stops_the_fraction_at_the_daemons_level() -> None:
    gtc, day = plan({"AAPL": holding("10.5", level="110.20")}, [], trail="5").placements
    assert (gtc.order_type, gtc.trail_percent, gtc.stop_price) == (OrderType.TRAILING_STOP, D(5), None)
    assert (day.order_type, day.stop_price) == (OrderType.STOP, D("110.20"))


def test_stops_that_already_cover_the_position_stay() -> None:
    orders = [resting(gtc_id(), "191"), resting(day_id(), "0.75")]
    assert not plan({"AAPL": holding("191.75")}, orders)


def test_adding_to_a_position_replaces_its_stops_under_the_new_entrys_id() -> None:
    orders = [resting(gtc_id(), "191"), resting(day_id(), "0.75")]
    added = client_order_id("zscore_mr", "AAPL", OrderSide.BUY, datetime(2017, 8, 2, 4, tzinfo=UTC))
    result = plan({"AAPL": holding("250.5", level="96.10", anchor=added)}, orders)
    assert [(c.client_order_id, c.reason) for c in result.cancels] == [
        (gtc_id(), StopReason.RESIZED),
        (day_id(), StopReason.RESIZED),
    ]
    assert [(p.client_order_id, p.qty, p.reason) for p in result.placements] == [
        (gtc_id(anchor=added), D(250), StopReason.RESIZED),
        (day_id(anchor=added), D("0.5"), StopReason.RESIZED),
    ]


def test_a_stop_whose_position_is_gone_is_an_orphan() -> None:
    result = plan({}, [resting(gtc_id(), "10"), resting(gtc_id(1, "other") + "", "3", symbol="MSFT")])
    assert {(c.symbol, c.reason) for c in result.cancels} == {("AAPL", StopReason.ORPHAN), ("MSFT", StopReason.ORPHAN)}
    assert result.placements == ()


def test_an_expired_day_stop_is_replaced_under_a_fresh_id_for_the_new_session() -> None:
    yesterday = day_id(session=date(2017, 8, 1))
    expired = resting(yesterday, "0.75", status=OrderStatus.EXPIRED)
    result = plan_stops(
        {"AAPL": holding("191.75")},
        [resting(gtc_id(session=date(2017, 8, 1)), "191"), expired],
        trail_percent=None,
        session=NEXT,
        is_used={yesterday}.__contains__,
    )
    assert result.cancels == ()
    [day] = result.placements
    assert day.client_order_id == day_id(session=NEXT)
    assert is_protective_stop_id(day.client_order_id)


def test_a_reused_id_is_never_planned_again() -> None:
    used = {gtc_id(1), gtc_id(2)}
    [gtc] = plan({"AAPL": holding("5")}, [], used=used).placements
    assert gtc.client_order_id == gtc_id(3)
    assert fresh_stop_id("AAPL", ENTRY, SESSION, "g", lambda _: False) == gtc_id(1)


def test_a_part_whose_ids_are_all_used_today_is_left_out_of_the_plan_not_raised() -> None:
    # 999 re-placements of one entry's stop in one session (a broker refusing every exit): the plan skips that
    # part until the next session instead of stopping the daemon; the other part is still planned.
    used = {gtc_id(seq) for seq in range(1, 1000)}
    [day] = plan({"AAPL": holding("5.5")}, [], used=used).placements
    assert day.client_order_id == day_id()
    assert fresh_stop_id("AAPL", ENTRY, SESSION, "g", used.__contains__) is None


def test_other_open_sells_leave_less_to_cover_and_an_open_exit_leaves_nothing() -> None:
    exit_order = BrokerOrder(EXIT_ID, "b-x", "AAPL", OrderSide.SELL, OrderStatus.NEW, D(191), None)
    result = plan({"AAPL": holding("191.75")}, [exit_order, resting(gtc_id(), "191"), resting(day_id(), "0.75")])
    assert [(c.client_order_id, c.reason) for c in result.cancels] == [(gtc_id(), StopReason.EXCESS)]
    assert result.placements == ()  # the 0.75 left over is covered by its DAY stop


def test_a_triggered_stop_is_a_sale_under_way_not_a_stop_to_cancel() -> None:
    filling = resting(gtc_id(), "10", status=OrderStatus.PARTIALLY_FILLED, filled="4")
    assert not is_resting_stop(filling)
    # 6 still owned and 6 still being sold by the triggered stop: nothing to add, nothing to cancel.
    assert not plan({"AAPL": holding("6")}, [filling])


def test_a_duplicate_stop_is_canceled_and_one_kept() -> None:
    result = plan({"AAPL": holding("10")}, [resting(gtc_id(1), "10"), resting(gtc_id(2), "10")])
    assert [(c.client_order_id, c.reason) for c in result.cancels] == [(gtc_id(2), StopReason.EXCESS)]
    assert result.placements == ()


def test_in_trailing_mode_a_day_stop_below_the_risen_level_still_covers_until_the_next_session() -> None:
    orders = [resting(gtc_id(), "10", trail="5"), resting(day_id(), "0.5", stop="100.00")]
    assert not plan({"AAPL": holding("10.5", level="104.50")}, orders, trail="5")
    # In fixed mode a level that moved (a new average entry) replaces it.
    assert plan({"AAPL": holding("0.5", level="104.50")}, [resting(day_id(), "0.5", stop="100.00")]).cancels


quantities = st.decimals(min_value=D("0.01"), max_value=D(500), places=3)


@settings(max_examples=200, deadline=None)
@given(
    qty=quantities,
    other=st.decimals(min_value=D(0), max_value=D(600), places=3),
    stops=st.lists(st.tuples(st.sampled_from("gd"), quantities), max_size=4),
    fractional=st.booleans(),
    trailing=st.booleans(),
)
def test_what_stays_plus_what_is_placed_covers_the_room_exactly_and_never_oversells(
    qty: Decimal, other: Decimal, stops: list[tuple[str, Decimal]], fractional: bool, trailing: bool
) -> None:
    orders = [
        resting(protective_stop_id("AAPL", ENTRY, SESSION, part, i + 1), str(q), trail="5" if trailing else None)
        for i, (part, q) in enumerate(stops)
    ]
    if other:
        orders.append(BrokerOrder(EXIT_ID, "b-x", "AAPL", OrderSide.SELL, OrderStatus.NEW, other, None))
    result = plan({"AAPL": holding(str(qty), fractional=fractional)}, orders, trail="5" if trailing else None)
    canceled = {c.client_order_id for c in result.cancels}
    after = [o for o in orders if o.client_order_id not in canceled]
    after += [resting(p.client_order_id, str(p.qty), trail="5" if p.trail_percent else None) for p in result.placements]
    position = {"AAPL": Position("AAPL", qty, D(100), D(100))}
    covered = sum((o.open_qty for o in after if is_resting_stop(o)), D(0))
    if other <= qty:
        assert oversells(position, after) == []
        room = qty - other
        assert covered == (room if fractional else room.to_integral_value(rounding=ROUND_FLOOR))  # exactly once
    else:
        assert covered == 0  # an over-sized other sell leaves no room: no stop stays


def test_the_batched_id_lookup_plans_the_same_stops_and_asks_one_by_one_only_past_sequence_1() -> None:
    used = {gtc_id(1), gtc_id(2)}
    holdings = {"AAPL": holding("5.5"), "MSFT": Holding("MSFT", D("3"), D("40.00"), True, ENTRY)}
    asked_one: list[str] = []
    asked_many: list[set[str]] = []

    def is_used(coid: str) -> bool:
        asked_one.append(coid)
        return coid in used

    def used_among(coids: Collection[str]) -> set[str]:
        ids = set(coids)
        asked_many.append(ids)
        return ids & used

    one_by_one = plan_stops(holdings, [], trail_percent=None, session=SESSION, is_used=used.__contains__)
    batched = plan_stops(holdings, [], trail_percent=None, session=SESSION, is_used=is_used, used_among=used_among)
    assert batched == one_by_one
    assert [p.client_order_id for p in batched.placements if p.symbol == "AAPL"] == [gtc_id(3), day_id(1)]
    assert len(asked_many) == 1  # every first choice in one query
    assert gtc_id(1) in asked_many[0]
    assert asked_one == [gtc_id(2), gtc_id(3)]  # past sequence 1, one by one as before
