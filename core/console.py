"""What a person sees: replay progress, the run summary and `tradingd status` as tables.

On a terminal the progress is a rich bar; in a pipe it is one plain line per 10% of the sessions, so a log
collector or `| tail` gets a short, escape-free record. Tables are rich tables; rich leaves out colours and cursor
codes when the stream is not a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from core.state_backup import BackupFile
from core.types import BrokerOrder, Fill, Position

PROGRESS_STEPS = 10  # piped output: one line per 10% of the sessions


def _money(value: object) -> str:
    try:
        return f"{Decimal(str(value)):,.2f}"
    except (InvalidOperation, ValueError):
        return str(value)


def _stdout(pipe_width: int = 120) -> Console:
    # Built per call: sys.stdout is resolved now (test runners swap it). A pipe gets no colours and a fixed
    # 120-column layout instead of rich's 80, so the tables do not wrap needlessly.
    out = sys.stdout
    return Console(file=out, width=None if out.isatty() else pipe_width, highlight=False)


def _rich_bar(label: str, detail: str, out: TextIO) -> Progress:
    """The one progress-bar layout, sized for an 80-column terminal (rich squeezes the bar first)."""
    return Progress(
        TextColumn(label),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TextColumn(detail),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(file=out),
        # Log lines written to stderr meanwhile print above the bar instead of tearing it.
        redirect_stderr=True,
        redirect_stdout=False,
    )


class _Deciles:
    """Piped progress: the percentage to print when `done` crosses into a new tenth of `total`, else None."""

    def __init__(self) -> None:
        self._last = 0

    def crossed(self, done: int, total: int) -> int | None:
        decile = min(done * PROGRESS_STEPS // max(total, 1), PROGRESS_STEPS)
        if decile <= self._last:
            return None
        self._last = decile
        return decile * 100 // PROGRESS_STEPS


class ReplayProgress:
    """Progress of a replay over `total` sessions: a rich bar on a terminal, a line per 10% otherwise."""

    def __init__(self, total: int, *, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.total = max(total, 1)
        self._stream = stream
        out = stream or sys.stderr
        self.live = out.isatty() if live is None else live
        self._deciles = _Deciles()
        self._progress: Progress | None = None
        self._task: Any = None
        if self.live:
            self._progress = _rich_bar("replay", "{task.fields[session]}  ${task.fields[equity]}", out)
            self._task = self._progress.add_task("replay", total=self.total, session="", equity="")
            self._progress.start()

    def _write(self, line: str) -> None:
        out = self._stream or sys.stderr
        out.write(line + "\n")
        out.flush()

    def announce(self, line: str) -> None:
        """A plain line before the progress (what is replayed, where the log file is)."""
        if self._progress is not None:
            self._progress.console.print(line, highlight=False, markup=False)
        else:
            self._write(line)

    def update(self, done: int, session: str, equity: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=done, session=session, equity=_money(equity))
            return
        percent = self._deciles.crossed(done, self.total)
        if percent is not None:
            self._write(f"replay {percent}% ({done}/{self.total} sessions, {session}) equity {_money(equity)}")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class DownloadProgress:
    """Progress of a batched download (`on_progress(done, total)` after each chunk): a rich bar on a terminal, a line
    per 10% otherwise. Silent when the whole download is one request: there is nothing to wait for."""

    def __init__(self, label: str, *, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.label = label
        self._stream = stream
        self._live = live
        self._deciles = _Deciles()
        self._progress: Progress | None = None
        self._task: Any = None
        self._plain = False

    def __call__(self, done: int, total: int) -> None:
        out = self._stream or sys.stderr
        if self._progress is None and not self._plain:
            if done >= total:
                return  # done in one request
            if out.isatty() if self._live is None else self._live:
                self._progress = _rich_bar(self.label, "symbols", out)
                self._task = self._progress.add_task(self.label, total=total)
                self._progress.start()
            else:
                self._plain = True
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=total)
            return
        percent = self._deciles.crossed(done, total)
        if percent is not None:
            out.write(f"{self.label} {percent}% ({done}/{total} symbols)\n")
            out.flush()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


# ---- run summary ---------------------------------------------------------------------------------------------------


def _counts(d: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1])) or "none"


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"tradingd {summary['mode']} run summary", show_header=True, title_justify="left")
    table.add_column("metric", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    focus = summary["focus"]
    rows = [
        ("strategy", summary["strategy"]),
        ("iterations", f"{summary['iterations']:,}  ({summary['bars']:,} bars)"),
        ("focus", f"{focus['source']}, {focus['daily_scans']} daily scans; last: {' '.join(focus['symbols'])}"),
        ("signals", f"{summary['signals']:,} generated, {summary['validated']:,} validated"),
        ("signals rejected", _counts(summary["rejected"])),
        ("orders", f"{summary['orders_approved']:,} approved, {summary['orders']:,} submitted"),
        ("orders denied", _counts(summary["denied"])),
        (
            "orders rejected",
            f"{_counts(summary['orders_rejected'])}; canceled {_counts(summary['orders_canceled'])}",
        ),
        ("fills", f"{summary['fills']:,}"),
        ("protective stops", _stops(summary["stops"])),
        ("bad bars rejected", _counts(summary["bad_bars"])),
        ("errors", _counts(summary["errors"])),
        ("equity", f"{_money(summary['start_equity'])} → {_money(summary['final_equity'])}"),
        ("return", f"{summary['return_pct']:+.2f}%"),
        ("max drawdown", f"{summary['max_drawdown_pct']:.2f}%"),
        (
            "exposure by tier",
            ", ".join(f"{k} {_money(v)}" for k, v in sorted(summary["exposure_by_tier"].items())) or "none",
        ),
        ("elapsed", f"{summary['elapsed_s']} s  ({summary['bars_per_s']:,.0f} bars/s)"),
    ]
    if "trades_csv" in summary:
        rows.append(("trades csv", str(summary["trades_csv"])))
    if "log_file" in summary:
        rows.append(("log file", str(summary["log_file"])))
    rows.extend(_report_rows(summary))
    for name, value in rows:
        table.add_row(name, value)
    return table


def _opt(value: float | None, spec: str, suffix: str = "") -> str:
    """A report figure; None (an undefined ratio, see analytics/model.py) reads n/a."""
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def _report_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The report's headline (`summary["report"]`, the `tradingd report --json` object) and where its HTML is."""
    report = summary.get("report")
    if report is None:
        return []
    benchmark = report["benchmark"]
    versus = (
        "no benchmark"
        if benchmark is None
        else f"{_opt(benchmark['total_return_pct'], '+.2f', '%')} {benchmark['name']}"
        f" (excess {_opt(report['excess_return_pct'], '+.2f', ' pts')})"
    )
    rows = [
        ("return vs benchmark", f"{_opt(report['total_return_pct'], '+.2f', '%')} vs {versus}"),
        ("Sharpe", f"{_opt(report['sharpe'], '.2f')} (benchmark {_opt(benchmark and benchmark['sharpe'], '.2f')})"),
        ("max drawdown (daily)", _opt(report["max_drawdown_pct"], ".2f", "%")),
        ("round trips", f"{report['trades']:,}, win rate {_opt(report['win_rate_pct'], '.1f', '%')}"),
    ]
    if "report_html" in summary:
        rows.append(("report", str(summary["report_html"])))
    return rows


def _stops(stops: dict[str, Any]) -> str:
    if stops["mode"] == "close":
        return "none (STOP_MODE=close: close-based stop-loss exits)"
    text = (
        f"{stops['mode']}: {stops['placed']:,} placed, {stops['triggered']:,} triggered;"
        f" cancels {_counts(stops['cancels'])}; denied {_counts(stops['denied'])};"
        f" exits withheld {_counts(stops['exits_withheld'])}"
    )
    return text + (f"; OVERSELL breaches {stops['oversells']}" if stops["oversells"] else "")


def print_summary(summary: dict[str, Any]) -> None:
    _stdout().print(summary_table(summary))


# ---- status --------------------------------------------------------------------------------------------------------

BREAKER_FLAGS = (
    ("halted", "kill switch"),
    ("breaker_daily_loss", "daily loss breaker"),
    ("breaker_drawdown", "drawdown breaker"),
    ("reduce_only", "reduce-only"),
    ("recovery", "recovery after state loss"),
)


def _pnl(position: Position) -> tuple[Decimal, Decimal | None]:
    pnl = (position.market_price - position.avg_entry_price) * position.qty
    cost = position.avg_entry_price * position.qty
    return pnl, (pnl / cost * 100 if cost else None)


def status_tables(
    summary: dict[str, Any],
    positions: dict[str, Position],
    open_orders: list[BrokerOrder],
    tiers: dict[str, str],
) -> list[Table]:
    """Account, positions, open orders, breakers, exposure and the latest scan / focus scores."""
    tables: list[Table] = []

    account = Table(title=f"account ({summary['mode']})", title_justify="left", show_header=False)
    account.add_column("", style="bold", no_wrap=True)
    account.add_column("", overflow="fold")
    mark = summary.get("last_equity_mark")
    if mark is None:
        account.add_row("equity", "no equity mark yet (the daemon has not run in this mode)")
    else:
        account.add_row("session", str(mark["session"]))
        account.add_row("equity", _money(mark["last_equity"]))
        account.add_row("start of day", _money(mark["start_equity"]))
        account.add_row("peak", _money(summary.get("peak_equity") or mark["peak_equity"]))
    orders = summary["orders"]
    by_status = ", ".join(f"{k} {v:,}" for k, v in orders["by_status"].items()) or "none"
    account.add_row("orders", f"{orders['total']:,} ({by_status})")
    account.add_row("fills", f"{summary['fills']:,}")
    account.add_row("journal events", f"{summary['journal']:,}")
    account.add_row("state db", str(summary["db"]))
    tables.append(account)

    held = Table(title=f"positions ({len(positions)})", title_justify="left")
    for name in ("symbol", "tier", "qty", "avg entry", "price", "market value", "unrealised P&L", "P&L %"):
        held.add_column(name, justify="left" if name in ("symbol", "tier") else "right")
    total_pnl = Decimal(0)
    for symbol in sorted(positions):
        position = positions[symbol]
        pnl, pct = _pnl(position)
        total_pnl += pnl
        held.add_row(
            symbol,
            tiers.get(symbol, ""),
            f"{position.qty.normalize():f}",
            _money(position.avg_entry_price),
            _money(position.market_price),
            _money(position.market_value),
            f"{pnl:+,.2f}",
            "" if pct is None else f"{pct:+.2f}%",
        )
    if positions:
        exposure = summary["exposure"]
        held.add_section()
        held.add_row("total", "", "", "", "", _money(exposure["total"]), f"{total_pnl:+,.2f}", "")
    tables.append(held)

    pending = Table(title=f"open orders ({len(open_orders)})", title_justify="left")
    for name in ("client order id", "symbol", "side", "amount", "status", "submitted (UTC)"):
        # The client order id is what a person greps the log file for: never truncated.
        pending.add_column(name, no_wrap=name == "client order id", justify="right" if name == "amount" else "left")
    for order in open_orders:
        amount = (
            f"${_money(order.notional)}" if order.notional is not None else f"{(order.qty or Decimal(0)).normalize():f}"
        )
        submitted = order.submitted_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if order.submitted_at else ""
        pending.add_row(order.client_order_id, order.symbol, order.side.value, amount, order.status.value, submitted)
    tables.append(pending)

    risk = Table(title="risk", title_justify="left", show_header=False)
    risk.add_column("", style="bold", no_wrap=True)
    risk.add_column("", overflow="fold")
    flags: dict[str, str] = summary["flags"]
    state = summary.get("trading_state")
    if state is not None:  # first: the one line that says what the daemon may do, and why
        why = "; ".join(reason["detail"] for reason in state["reasons"])
        risk.add_row("trading state", state["state"].upper() + (f" ({why})" if why else ""))
    for flag, label in BREAKER_FLAGS:
        value = flags.get(flag)
        risk.add_row(label, "off" if value is None else f"ON ({value})")
    for request in summary.get("close_requests", []):  # `tradingd close`, a breaker's flatten: not carried out yet
        refused = f"; last refused: {request['refused']}" if request["refused"] else ""
        risk.add_row(f"close {request['target']}", f"{request['reason']}, requested {request['requested_at']}{refused}")
    restored = flags.get("restored_from")
    if restored is not None:  # `tradingd restore` ran and no daemon has started since
        risk.add_row("restored", f"{restored}; the next start reconciles with the broker")
    exposure = summary["exposure"]
    risk.add_row("exposure by tier", ", ".join(f"{k} {_money(v)}" for k, v in sorted(exposure["tiers"].items())))
    risk.add_row("herfindahl", str(summary["herfindahl"]))
    risk.add_row("effective positions", str(summary["effective_positions"]))
    portfolio = summary.get("portfolio")
    if portfolio is not None:  # tradingd/status_risk.py: the definitions are in analytics/portfolio_risk.py
        why = "" if portfolio["note"] is None else f" ({portfolio['note']})"
        vol, ratio = portfolio["volatility_pct"], portfolio["diversification_ratio"]
        lookback = f"{portfolio['lookback_sessions']}-session"
        risk.add_row("portfolio volatility", (f"{vol:.2f}% annualised, {lookback}" if vol is not None else "n/a") + why)
        risk.add_row("diversification ratio", (f"{ratio:.2f}" if ratio is not None else "n/a") + why)
    tables.append(risk)

    scores = summary["focus_scores"]
    last_scan = flags.get("last_scan_date")
    title = f"focus scores (last daily scan: {last_scan or 'never'}"
    if scores.get("scored_at"):
        title += f"; scored {scores['scored_at']}, {_age(scores.get('age_s'))} ago"
    scored = Table(title=title + ")", title_justify="left")
    if not scores.get("scores"):
        scored.caption = f"nothing scored yet (every {scores.get('interval_minutes')} min while the market is open)"
    for name in ("symbol", "score", "z-score", "rvol pace", "price", "change %", "explosion %"):
        scored.add_column(name, justify="left" if name == "symbol" else "right")
    for item in scores.get("scores", []):
        scored.add_row(
            str(item.get("symbol", "")),
            _num(item.get("score"), 1),
            _num(item.get("zscore"), 2),
            _num(item.get("rvol_pace"), 2),
            _num(item.get("price"), 2),
            _num(item.get("change_pct"), 2),
            _num(item.get("explosion_probability"), 1),
        )
    tables.append(scored)
    return tables


def _num(value: object, digits: int) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.{digits}f}"
    return "–"


def _age(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def print_status(
    summary: dict[str, Any], positions: dict[str, Position], open_orders: list[BrokerOrder], tiers: dict[str, str]
) -> None:
    console = _stdout()
    for table in status_tables(summary, positions, open_orders, tiers):
        console.print(table)


# ---- orders / fills listings -----------------------------------------------------------------------------------------


def _utc(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value is not None else ""


def _amount(order: BrokerOrder) -> str:
    if order.notional is not None:
        return f"${_money(order.notional)}"
    return f"{(order.qty or Decimal(0)).normalize():f}"


def orders_table(orders: list[BrokerOrder], title: str) -> Table:
    table = Table(title=f"{title} ({len(orders)})", title_justify="left")
    for name in ("client order id", "symbol", "side", "amount", "filled", "avg price", "status", "submitted (UTC)",
                 "updated (UTC)", "reason"):  # fmt: skip
        # Every column but the reason is short and fixed: kept on one line so a piped listing greps row by row (the
        # client order id is what a person greps the log file for).
        right = name in ("amount", "filled", "avg price")
        table.add_column(name, no_wrap=name != "reason", justify="right" if right else "left")
    for order in orders:
        table.add_row(
            order.client_order_id,
            order.symbol,
            order.side.value,
            _amount(order),
            f"{order.filled_qty.normalize():f}",
            "" if order.filled_avg_price is None else _money(order.filled_avg_price),
            order.status.value,
            _utc(order.submitted_at),
            _utc(order.updated_at),
            order.reason,
        )
    return table


def fills_table(fills: list[Fill], title: str) -> Table:
    table = Table(title=f"{title} ({len(fills)})", title_justify="left")
    for name in ("time (UTC)", "symbol", "side", "qty", "price", "client order id"):
        table.add_column(
            name, no_wrap=name == "client order id", justify="right" if name in ("qty", "price") else "left"
        )
    for fill in fills:
        table.add_row(
            _utc(fill.ts), fill.symbol, fill.side.value, f"{fill.qty.normalize():f}", _money(fill.price),
            fill.client_order_id,
        )  # fmt: skip
    return table


def backups_table(backups: Sequence[BackupFile], title: str) -> Table:
    table = Table(title=f"{title} ({len(backups)})", title_justify="left")
    for name in ("date", "size", "path"):
        table.add_column(name, no_wrap=True, justify="right" if name == "size" else "left")
    for backup in backups:
        table.add_row(backup.day.isoformat(), f"{backup.size:,}", str(backup.path))
    return table


def strategies_table(strategies: list[dict[str, Any]]) -> Table:
    """One row per strategy (`StrategyInfo.as_dict()` plus `selected`); `*` marks the one STRATEGY_NAME selects."""
    table = Table(title=f"strategies ({len(strategies)})", title_justify="left")
    for name in ("", "name", "order tag", "source", "ranks the scan", "description"):
        table.add_column(name, no_wrap=name in ("name", "order tag"))
    for item in strategies:
        table.add_row(
            "*" if item["selected"] else "",
            item["name"],
            item["order_tag"],
            item["source"],
            "entry score" if item["entry_score"] else "generic score",
            item["description"],
        )
    return table


def parameters_table(strategies: list[dict[str, Any]]) -> Table:
    """One row per parameter of every strategy, with the variable that sets it."""
    table = Table(title="parameters", title_justify="left")
    for name in ("strategy", "parameter", "type", "default", "set with", "description"):
        table.add_column(name, no_wrap=name != "description", justify="right" if name == "default" else "left")
    for item in strategies:
        for spec in item["params"]:
            table.add_row(
                item["name"], spec["name"], spec["type"], str(spec["default"]), spec["setting"], spec["description"]
            )
    return table


# A listing row is one order or fill: a pipe gets room for a whole row rather than wrapped cells.
LISTING_PIPE_WIDTH = 200


def print_table(table: Table, note: str | None = None) -> None:
    """The table, then `note` as one unwrapped line (a path must stay whole to be copied)."""
    console = _stdout(LISTING_PIPE_WIDTH)
    console.print(table)
    if note is not None:
        console.print(note, markup=False, soft_wrap=True)


def replay_header(sessions: list[date], symbols: int, log_file: str, *, scanning: bool = False) -> str:
    if not sessions:
        return f"replay: no sessions; log file {log_file}"
    # With the scanner on, the configured symbols are only the fallback until the first daily scan picks the focus.
    watched = f"daily scanner picks, {symbols} fallback symbols" if scanning else f"{symbols} symbols"
    return f"replay {len(sessions)} sessions ({sessions[0]} to {sessions[-1]}), {watched}; full log in {log_file}"
