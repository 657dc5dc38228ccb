"""The daily digest: the day's P&L, the positions, the next session's candidates and the equity chart.

Built in the loop's thread when `SessionClosed` arrives (a few small reads of the state DB and the latest scan, once
a session); the chart is only data here, drawn as a PNG by the sender when the message goes out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

from core.candidates import CandidatesFile
from core.clock import NyseCalendar
from core.notify_kinds import NotifyKind
from core.store import EquityMark, StateStore
from core.types import CENT
from tradingd.notify.notification import EquityChart, Notification

CHART_DAYS = 365  # the chart's window: a year of sessions, whatever the daemon's age
TOP_CANDIDATES = 10


class DigestBuilder:
    def __init__(
        self,
        store: StateStore,
        calendar: NyseCalendar,
        candidates: Callable[[], CandidatesFile | None],
        prefix: str,
    ) -> None:
        self._store = store
        self._calendar = calendar
        self._candidates = candidates
        self._prefix = prefix
        # The chart's curve: read from the store once, then kept up to date one session at a time (a replay with
        # NOTIFY_IN_SIM builds a digest per session: re-reading a year of marks each time was a fifth of its run).
        self._curve: dict[date, float] | None = None
        self._last: EquityMark | None = None  # the last digest's mark: the next one's P&L reference
        self._session: date | None = None  # the last digest's session

    def build(self, session: date, *, with_chart: bool = True) -> Notification:
        """The digest of `session`. `with_chart=False` (a replay's digests but the last): no chart now, `chart()`
        gives the curve's chart when it is wanted (copying a year of the curve per session was most of a digest)."""
        mark = self._store.equity_mark(session)  # one read a session: the P&L reference is the last digest's mark
        lines = [*self._pnl(session, mark), "", *self._positions(), "", *self._next_candidates()]
        self._update_curve(session, mark)
        self._session = session
        if mark is not None:
            self._last = mark
        title = f"{self._prefix}: daily digest {session.isoformat()}"
        return Notification(NotifyKind.DIGEST, title, "\n".join(lines), self.chart() if with_chart else None)

    def chart(self) -> EquityChart | None:
        """The equity chart to the last digest's session (None before any digest, or with no equity marked)."""
        if not self._curve or self._session is None:
            return None
        return EquityChart(
            sessions=tuple(self._curve),
            equity=tuple(self._curve.values()),
            title=f"tradingd equity to {self._session.isoformat()}",
        )

    def _update_curve(self, session: date, mark: EquityMark | None) -> None:
        start = session - timedelta(days=CHART_DAYS)
        if self._curve is None:
            marks = self._store.equity_marks(start=start, end=session)
            self._curve = {m.session: float(m.last_equity) for m in marks}
        elif mark is not None:
            self._curve[mark.session] = float(mark.last_equity)
            while self._curve and next(iter(self._curve)) < start:  # oldest first: sessions only move forward
                del self._curve[next(iter(self._curve))]

    def _pnl(self, session: date, mark: EquityMark | None) -> list[str]:
        if mark is None:
            return ["P&L: no equity recorded this session"]
        previous_session = self._calendar.previous_session(session)
        previous = self._last
        if previous is None or previous.session != previous_session:  # no digest of that session from this builder
            previous = self._store.equity_mark(previous_session)
        reference = previous.last_equity if previous is not None else mark.start_equity
        change = mark.last_equity - reference
        pct = change / reference * 100 if reference else Decimal(0)
        drawdown = (mark.peak_equity - mark.last_equity) / mark.peak_equity * 100 if mark.peak_equity else Decimal(0)
        return [
            f"P&L {session.isoformat()}: {change.quantize(CENT):+,} ({pct:+.2f}%)",
            f"equity {mark.last_equity.quantize(CENT):,}, drawdown from peak {drawdown:.2f}%",
        ]

    def _positions(self) -> list[str]:
        positions = sorted(self._store.load_positions().values(), key=lambda p: p.market_value, reverse=True)
        if not positions:
            return ["positions: none"]
        lines = [f"positions ({len(positions)}):"]
        for position in positions:
            unrealised = (position.market_price - position.avg_entry_price) * position.qty
            lines.append(
                f"  {position.symbol} {position.qty.normalize():f} @ {position.avg_entry_price.quantize(CENT)}"
                f" now {position.market_price.quantize(CENT)} ({unrealised.quantize(CENT):+,})"
            )
        return lines

    def _next_candidates(self) -> list[str]:
        document = self._candidates()
        if document is None or not document.candidates:
            return ["candidates: none from the scanner"]
        top = document.candidates[:TOP_CANDIDATES]
        listed = ", ".join(f"{item['symbol']} ({float(item['score']):.2f})" for item in top)
        return [f"candidates as of {document.as_of.isoformat()} (top {len(top)} by score): {listed}"]
