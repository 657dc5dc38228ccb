"""The daily digest: its lines from the state DB and the latest scan, and its chart as a real PNG attachment through
apprise's json:// to a loopback receiver."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from core.bus import EventBus
from core.candidates import CandidatesFile, CandidatesFileReader, write_candidates
from core.clock import NyseCalendar
from core.messages import DaemonStopped, SessionClosed
from core.notify_kinds import ALL_KINDS, NotifyKind
from core.store import StateStore
from core.types import Position
from tests.core.test_candidates import payload
from tests.tradingd.notify.receiver import receiver
from tradingd.notify.channels import parse_channels
from tradingd.notify.digest import DigestBuilder
from tradingd.notify.notification import Notification
from tradingd.notify.observer import NotificationObserver
from tradingd.notify.sender import NotificationSender
from tradingd.notify.service import draw_chart

MON, TUE = date(2024, 3, 4), date(2024, 3, 5)


def _candidates() -> CandidatesFile:
    items = tuple({"symbol": s, "score": score} for s, score in (("NVDA", 2.5), ("AMD", 1.25)))
    return CandidatesFile(
        generated_at=datetime(2024, 3, 5, 21, 5, tzinfo=UTC),
        as_of=TUE,
        symbols=("NVDA", "AMD"),
        baseline=(),
        candidates=items,
        stats={},
    )


def _store(tmp_path: Path) -> StateStore:
    store = StateStore(tmp_path / "state.db")
    store.mark_equity(MON, Decimal(100_000))
    store.mark_equity(TUE, Decimal(100_000))
    store.mark_equity(TUE, Decimal("98500.50"))
    store.save_positions({"AAPL": Position("AAPL", Decimal(10), Decimal(170), Decimal("172.5"))})
    return store


def test_the_digest_has_the_days_pnl_positions_candidates_and_the_curve(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        notification = DigestBuilder(store, NyseCalendar(), _candidates, "tradingd paper").build(TUE)
    assert notification.kind is NotifyKind.DIGEST
    assert notification.title == "tradingd paper: daily digest 2024-03-05"
    lines = notification.body.splitlines()
    assert lines[0] == "P&L 2024-03-05: -1,499.50 (-1.50%)"  # against Monday's last mark
    assert lines[1] == "equity 98,500.50, drawdown from peak 1.50%"
    assert "  AAPL 10 @ 170.00 now 172.50 (+25.00)" in lines
    assert lines[-1] == "candidates as of 2024-03-05 (top 2 by score): NVDA (2.50), AMD (1.25)"
    assert notification.chart is not None
    assert notification.chart.sessions == (MON, TUE)
    assert notification.chart.equity == (100_000.0, 98_500.5)


def test_a_builder_kept_across_sessions_says_what_a_fresh_one_says(tmp_path: Path) -> None:
    # The builder keeps the curve between digests (one read of the equity per session in a replay): the P&L's
    # reference then comes from the curve and must be the store's previous mark all the same.
    with _store(tmp_path) as store:
        kept = DigestBuilder(store, NyseCalendar(), _candidates, "tradingd paper")
        monday = kept.build(MON)
        tuesday = kept.build(TUE)
        fresh = DigestBuilder(store, NyseCalendar(), _candidates, "tradingd paper").build(TUE)
    assert monday.body.splitlines()[0] == "P&L 2024-03-04: +0.00 (+0.00%)"  # no earlier mark: against its start
    assert tuesday.body == fresh.body
    assert tuesday.chart == fresh.chart


def test_a_replay_sends_each_digest_without_a_chart_but_the_last(tmp_path: Path) -> None:
    # Sim: a digest per replayed session; one chart, drawn after the loop, for the last (at DaemonStopped).
    bus, sent = EventBus(), list[Notification]()
    with _store(tmp_path) as store:
        digest = DigestBuilder(store, NyseCalendar(), _candidates, "tradingd sim")
        NotificationObserver(
            bus,
            sent.append,
            kinds=ALL_KINDS,
            mode="sim",
            broker_down_after=timedelta(minutes=5),
            digest=digest,
            chart_last_digest_only=True,
        )
        for session in (MON, TUE):
            at = datetime.combine(session, time(21), UTC)
            bus.publish(SessionClosed(ts_event=at, ts_init=at, session=session))
        assert [(n.title, n.chart) for n in sent] == [("tradingd sim: daily digest 2024-03-04", None)]
        end = datetime.combine(TUE, time(22), UTC)
        bus.publish(DaemonStopped(ts_event=end, ts_init=end, mode="sim", reason="finished", iterations=2))
    last = [n for n in sent if n.kind is NotifyKind.DIGEST][-1]
    assert last.title == "tradingd sim: daily digest 2024-03-05"
    assert last.chart is not None
    assert last.chart.sessions == (MON, TUE)
    assert last.chart.equity == (100_000.0, 98_500.5)
    assert last.chart.title == "tradingd equity to 2024-03-05"


def test_the_digest_without_equity_positions_or_candidates_says_so(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        notification = DigestBuilder(store, NyseCalendar(), lambda: None, "tradingd sim").build(TUE)
    assert notification.body.splitlines() == [
        "P&L: no equity recorded this session",
        "",
        "positions: none",
        "",
        "candidates: none from the scanner",
    ]
    assert notification.chart is None


def test_the_chart_reaches_a_json_channel_as_a_png_attachment(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        notification = DigestBuilder(store, NyseCalendar(), _candidates, "tradingd paper").build(TUE)
    with receiver() as hook:
        sender = NotificationSender(parse_channels(hook.url), per_minute=60, render_chart=draw_chart)
        assert sender.deliver(notification)
        (message,) = hook.snapshot()
    assert message["title"] == notification.title
    assert message["message"] == notification.body
    (attachment,) = message["attachments"]
    assert attachment["filename"] == "equity.png"
    assert base64.b64decode(attachment["base64"]).startswith(b"\x89PNG\r\n\x1a\n")


def test_the_candidates_file_is_parsed_again_only_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "candidates.json"
    reader = CandidatesFileReader(path)
    assert reader.read() is None  # no file yet
    write_candidates(path, payload(picks=("DHR", "FTV")))
    first = reader.read()
    assert first is not None
    assert [c["symbol"] for c in first.candidates] == ["DHR", "FTV"]
    assert reader.read() is first  # unchanged: the parsed document again
    write_candidates(path, payload(as_of="2018-02-08", picks=("XOM",)))  # atomic replace: a new file
    second = reader.read()
    assert second is not None
    assert [c["symbol"] for c in second.candidates] == ["XOM"]
    path.write_text("{not json")
    assert reader.read() is None  # unreadable: none, as before the cache
