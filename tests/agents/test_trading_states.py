"""Trading states (README "Trading states"): one derivation, and risk gating on it, over random operator sequences."""

from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.risk import halt_trading, read_trading_state, resume_trading
from core.flags import FLAG_DAILY_LOSS, FLAG_DRAWDOWN, FLAG_RECOVERY
from core.messages import OrderApproved, OrderDenied
from core.types import Position, TradingState, derive_trading_state
from tests.agents.test_risk import MON, Harness, signal, snapshot
from tests.fakes.flags import MemoryFlagStore

D = Decimal
OPS = ("halt", "halt_reduce", "resume", "trip_daily", "trip_drawdown", "new_session", "state_loss")
REDUCING_CODES = {"daily_loss_limit", "max_drawdown", "reduce_only", "recovery"}


def test_derivation_table() -> None:
    assert derive_trading_state(halted=False, reduce_only=False, daily_loss=False, drawdown=False, recovery=False) is (
        TradingState.ACTIVE
    )
    for name in ("reduce_only", "daily_loss", "drawdown", "recovery"):
        kwargs = dict.fromkeys(("halted", "reduce_only", "daily_loss", "drawdown", "recovery"), False)
        kwargs[name] = True
        assert derive_trading_state(**kwargs) is TradingState.REDUCING
        kwargs["halted"] = True
        assert derive_trading_state(**kwargs) is TradingState.HALTED
    assert TradingState.ACTIVE.allows_entries
    assert TradingState.ACTIVE.allows_exits
    assert not TradingState.REDUCING.allows_entries
    assert TradingState.REDUCING.allows_exits
    assert not TradingState.HALTED.allows_entries
    assert not TradingState.HALTED.allows_exits


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(OPS), max_size=25))
def test_random_operator_sequences_match_the_table(ops: list[str]) -> None:
    flags = MemoryFlagStore()
    h = Harness(flags)
    session = MON
    # The model, written from the table alone.
    halted = reduce_only = drawdown = recovery = False
    daily_on = None
    held = {"SPY": Position("SPY", D(10), D(100), D(100))}
    for op in ops:
        if op == "halt":
            halt_trading(flags, "ops")
            halted = True
        elif op == "halt_reduce":
            halt_trading(flags, "ops", reduce_only=True)
            reduce_only, halted = True, False
        elif op == "resume":
            resume_trading(flags, equity=None)
            halted = reduce_only = drawdown = recovery = False
        elif op == "trip_daily":
            flags.set_flag(FLAG_DAILY_LOSS, session.isoformat())
            daily_on = session
        elif op == "trip_drawdown":
            flags.set_flag(FLAG_DRAWDOWN, "test")
            drawdown = True
        elif op == "new_session":
            session += timedelta(days=1)
        elif op == "state_loss":
            flags.set_flag(FLAG_RECOVERY, "test")
            recovery = True
        if halted:
            expected = TradingState.HALTED
        elif reduce_only or drawdown or recovery or daily_on == session:
            expected = TradingState.REDUCING
        else:
            expected = TradingState.ACTIVE
        assert read_trading_state(flags, session).state is expected

        out = h.iterate(snapshot(positions=held), [signal("QQQ"), signal("SPY", is_exit=True)], session=session)
        verdicts = {m.signal.symbol: m for m in out if isinstance(m, OrderApproved | OrderDenied)}
        entry, exit_ = verdicts["QQQ"], verdicts["SPY"]
        # Risk never approves an entry unless active, and nothing when halted; exits go on while reducing.
        assert isinstance(entry, OrderApproved) == (expected is TradingState.ACTIVE)
        assert isinstance(exit_, OrderApproved) == (expected is not TradingState.HALTED)
        if expected is TradingState.HALTED:
            assert isinstance(entry, OrderDenied)
            assert entry.reason == "halted"
            assert isinstance(exit_, OrderDenied)
            assert exit_.reason == "halted"
        elif expected is TradingState.REDUCING:
            assert isinstance(entry, OrderDenied)
            assert entry.reason in REDUCING_CODES


def test_reason_codes_per_cause() -> None:
    for setup, code in (
        (lambda f: halt_trading(f, "x", reduce_only=True), "reduce_only"),
        (lambda f: f.set_flag(FLAG_RECOVERY, "lost"), "recovery"),
        (lambda f: f.set_flag(FLAG_DRAWDOWN, "dd"), "max_drawdown"),
        (lambda f: f.set_flag(FLAG_DAILY_LOSS, MON.isoformat()), "daily_loss_limit"),
    ):
        flags = MemoryFlagStore()
        setup(flags)
        out = Harness(flags).iterate(snapshot(), [signal("QQQ")])
        [denied] = [m for m in out if isinstance(m, OrderDenied)]
        assert denied.reason == code
        assert read_trading_state(flags, MON).as_json()["state"] == "reducing"
