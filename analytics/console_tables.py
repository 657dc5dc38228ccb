"""The report in the terminal: rich tables of the headline figures beside the benchmark's, the round trips'
statistics, the tiers and the most-traded symbols (`tradingd report` without --json)."""

from __future__ import annotations

from rich.table import Table

from analytics.formatting import group_cells, headline_rows, trade_rows
from analytics.model import Report

TOP_SYMBOLS = 10


def _columns(table: Table, names: tuple[str, ...], left: int) -> Table:
    for i, name in enumerate(names):
        table.add_column(name, justify="left" if i < left else "right", no_wrap=i < left)
    return table


def report_tables(report: Report) -> list[Table]:
    bench = report.benchmark.name if report.benchmark is not None else "no benchmark"
    headline = Table(title=f"tradingd {report.mode} report", title_justify="left")
    headline.add_column("metric", style="bold", no_wrap=True)
    headline.add_column("strategy", justify="right")
    headline.add_column(f"benchmark: {bench}", justify="right")
    for row in headline_rows(report):
        headline.add_row(*row)

    trades = Table(title="round trips", title_justify="left", show_header=False)
    trades.add_column("", style="bold", no_wrap=True)
    trades.add_column("", justify="right")
    for name, value in trade_rows(report):
        trades.add_row(name, value)

    group = ("trades", "wins", "losses", "win rate", "profit factor", "P&L ($)")
    tiers = _columns(Table(title="by tier", title_justify="left"), ("tier", *group), 1)
    for tier, stats in sorted(report.by_tier.items()):
        tiers.add_row(tier, *group_cells(stats))

    shown = report.by_symbol[:TOP_SYMBOLS]
    title = f"top {len(shown)} of {len(report.by_symbol)} symbols by trades"
    symbols = _columns(Table(title=title, title_justify="left"), ("symbol", "tier", *group), 2)
    for item in shown:
        symbols.add_row(item.symbol, item.tier.value if item.tier else "", *group_cells(item.stats))
    return [headline, trades, tiers, symbols]
