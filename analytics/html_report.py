"""The HTML tearsheet: one self-contained file from a `Report`, that opens offline.

plotly.js is inlined once in the head (no CDN, no external font or stylesheet), each chart is a div with its
figure's JSON; the tables are plain HTML (the ledger has every round trip, one row each). Strings are built by
joining, not by a template engine: the page is small and its structure fixed.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from pathlib import Path

import plotly.io as pio
from plotly.offline import get_plotlyjs

from analytics.charts import report_figures
from analytics.formatting import group_cells, headline_rows, money, pct, trade_rows, utc_minute
from analytics.model import GroupStats, Report

CHART_CONFIG = {"displaylogo": False, "responsive": True}

STYLE = """
body { background: #fff; color: #1b1b1b; margin: 0 auto; max-width: 1320px; padding: 16px 24px 48px;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
h1 { font-size: 22px; margin: 8px 0 2px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
p.meta, p.note { color: #444; margin: 4px 0; } p.note { font-size: 13px; }
.tables { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e4e4e4; text-align: right; white-space: nowrap; }
th { background: #f3f5f8; color: #1b1b1b; font-weight: 600; position: sticky; top: 0; }
td.l, th.l { text-align: left; } tr:nth-child(even) td { background: #fafafa; }
td.pos { color: #137333; } td.neg { color: #b3261e; }
.chart { border: 1px solid #e4e4e4; border-radius: 4px; margin: 12px 0; }
.ledger td, .ledger th { padding: 2px 7px; }
.ledger { max-height: 640px; overflow: auto; border: 1px solid #e4e4e4; width: fit-content; max-width: 100%; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(
    header: Sequence[str], rows: Iterable[Sequence[str]], left: Sequence[int] = (0,), *, sign_cols: Sequence[int] = ()
) -> str:
    """A plain table; the `left` columns (text) left-aligned, the rest (numbers) right; `sign_cols` coloured by the
    sign of their text."""

    def cell(i: int, value: str) -> str:
        classes = ["l"] if i in left else []
        if i in sign_cols and value[:1] in ("+", "-"):
            classes.append("pos" if value[0] == "+" else "neg")
        attr = f' class="{" ".join(classes)}"' if classes else ""
        return f"<td{attr}>{_e(value)}</td>"

    head = "".join(f"<th{' class=l' if i in left else ''}>{_e(h)}</th>" for i, h in enumerate(header))
    body = "\n".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def _group_row(name: str, tier: str, stats: GroupStats) -> list[str]:
    return [name, tier, *group_cells(stats)]


def _tables(report: Report) -> str:
    bench_name = report.benchmark.name if report.benchmark is not None else "no benchmark"
    headline = _table(("metric", "strategy", f"benchmark ({bench_name})"), headline_rows(report), sign_cols=(1, 2))
    trades = _table(("round trips", ""), trade_rows(report), sign_cols=(1,))
    group_header = ("", "", "trades", "wins", "losses", "win rate", "profit factor", "P&L ($)")
    by_tier = _table(
        ("tier", *group_header[2:]),
        ([row[0], *row[2:]] for row in (_group_row(t, "", s) for t, s in sorted(report.by_tier.items()))),
        sign_cols=(6,),
    )
    by_symbol = _table(
        ("symbol", "tier", *group_header[2:]),
        (_group_row(s.symbol, s.tier.value if s.tier else "", s.stats) for s in report.by_symbol),
        left=(0, 1),
        sign_cols=(7,),
    )
    return (
        f'<h2>Summary</h2><div class="tables"><div id="headline">{headline}</div>'
        f'<div id="trade-stats">{trades}</div></div>'
        f'<h2>By tier</h2><div id="by-tier">{by_tier}</div>'
        f'<h2>By symbol ({len(report.by_symbol):,})</h2><div id="by-symbol" class="ledger">{by_symbol}</div>'
    )


LEDGER_HEADER = (
    "symbol",
    "tier",
    "entry (UTC)",
    "exit (UTC)",
    "qty",
    "entry price",
    "exit price",
    "P&L ($)",
    "P&L %",
    "days held",
    "exit reason",
    "entry order",
    "exit order",
)


def _ledger(report: Report) -> str:
    rows = (
        (
            t.symbol,
            t.tier.value if t.tier else "",
            utc_minute(t.entry_time),
            utc_minute(t.exit_time),
            f"{t.qty.normalize():f}",
            money(t.entry_price),
            money(t.exit_price),
            money(t.pnl, signed=True),
            pct(t.pnl_pct, signed=True),
            f"{t.days_held:.1f}",
            t.exit_reason.value,
            t.entry_order_id,
            t.exit_order_id,
        )
        for t in report.ledger
    )
    table = _table(LEDGER_HEADER, rows, left=(0, 1, 2, 3, 10, 11, 12), sign_cols=(7, 8))
    return f'<h2>Round trips ({len(report.ledger):,}, by exit time)</h2><div id="ledger" class="ledger">{table}</div>'


def _charts(report: Report) -> str:
    parts = []
    for element_id, figure in report_figures(report).items():
        chart = pio.to_html(
            figure,
            config=CHART_CONFIG,
            include_plotlyjs=False,  # inlined once in the head
            full_html=False,
            default_height=f"{figure.layout.height}px",
            div_id=element_id,
        )
        parts.append(f'<div class="chart">{chart}</div>')
    return "\n".join(parts)


def render_html(report: Report) -> str:
    """The whole page as one string."""
    notes = [report.conventions]
    if report.benchmark is not None:
        notes.insert(0, f"Benchmark: {report.benchmark.name}. {report.benchmark.note}")
    notes.extend(report.notes)
    note_html = "".join(f'<p class="note">{_e(note)}</p>' for note in notes)
    title = f"tradingd {report.mode} report, {report.start} to {report.end}"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head>\n<body>'
        f"<h1>{_e(title)}</h1>"
        f'<p class="meta">{_e(report.mode)} mode; {len(report.series.sessions):,} sessions; '
        f"{len(report.ledger):,} round trips</p>{note_html}"
        f"{_tables(report)}<h2>Charts</h2>{_charts(report)}{_ledger(report)}"
        "</body></html>\n"
    )


def write_html(report: Report, path: Path) -> Path:
    """Write the page to `path` (its folder created); the caller reports an OSError with the option's name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path
