"""The report's charts as plotly figures (graph_objects), built from a `Report`'s series with numpy: no per-session
Python loop, so a 5-year report's figures take milliseconds.

Each function returns one figure; `report_figures` returns them all, keyed by the HTML element id they render into
(the browser test finds them by these ids).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import plotly.graph_objects as go

from analytics.model import PriceMarks, Report

ROLLING_SHARPE_SESSIONS = 126  # six months of sessions
SESSIONS_PER_YEAR = 252
MIN_ROLLING_WINDOW = 5  # below this a window's Sharpe is noise: the chart says so rather than drawing it
STRATEGY_COLOUR = "#1f5fbf"
BENCHMARK_COLOUR = "#8a8a8a"
ENTRY_COLOUR = "#1a9641"
EXIT_COLOUR = "#d7191c"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

FloatArray = npt.NDArray[np.float64]


def _days(sessions: tuple[object, ...]) -> npt.NDArray[np.datetime64]:
    return np.asarray(sessions, dtype="datetime64[D]")


def _layout(fig: go.Figure, title: str, y_title: str, *, y_suffix: str = "") -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left"},
        template="plotly_white",
        height=380,
        margin={"l": 70, "r": 20, "t": 60, "b": 40},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0},
        hovermode="x unified",
        font={"family": "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif", "color": "#222"},
    )
    fig.update_yaxes(title_text=y_title, ticksuffix=y_suffix, zeroline=True, zerolinecolor="#bbb")
    return fig


def equity_figure(report: Report) -> go.Figure:
    series = report.series
    x = _days(series.sessions)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=x, y=np.asarray(series.equity), name="strategy", mode="lines", line={"color": STRATEGY_COLOUR})
    )
    if report.benchmark is not None:
        bench = np.asarray(series.benchmark_equity, dtype=np.float64)  # None -> NaN: a gap before it starts
        fig.add_trace(
            go.Scatter(
                x=x,
                y=bench,
                name=f"benchmark: {report.benchmark.name}",
                mode="lines",
                line={"color": BENCHMARK_COLOUR, "dash": "dot"},
            )
        )
    return _layout(fig, "Equity against the benchmark", "equity ($)")


def drawdown_pct(equity: FloatArray) -> FloatArray:
    """Percent below the running peak, <= 0 (the underwater curve)."""
    peak = np.maximum.accumulate(equity)
    return (equity / peak - 1) * 100


def drawdown_figure(report: Report) -> go.Figure:
    underwater = drawdown_pct(np.asarray(report.series.equity, dtype=np.float64))
    fig = go.Figure(
        go.Scatter(
            x=_days(report.series.sessions),
            y=underwater,
            name="drawdown",
            mode="lines",
            fill="tozeroy",
            line={"color": EXIT_COLOUR, "width": 1},
            fillcolor="rgba(215, 25, 28, 0.25)",
        )
    )
    return _layout(fig, "Underwater: drawdown from the running peak", "drawdown", y_suffix="%")


def monthly_returns(report: Report) -> tuple[list[int], FloatArray]:
    """(years, a years x 12 array of monthly returns in percent, NaN where the report has no session)."""
    sessions = np.asarray(report.series.sessions, dtype="datetime64[M]")
    equity = np.asarray(report.series.equity, dtype=np.float64)
    last_of_month = np.flatnonzero(np.append(sessions[1:] != sessions[:-1], True))
    month_end = equity[last_of_month]
    base = np.concatenate(([float(report.start_equity)], month_end[:-1]))
    returns = (month_end / base - 1) * 100
    months = sessions[last_of_month].astype(np.int64)  # months since 1970-01
    years = months // 12 + 1970
    first_year = int(years[0])
    grid = np.full((int(years[-1]) - first_year + 1, 12), np.nan)
    grid[years - first_year, months % 12] = returns
    return list(range(first_year, first_year + grid.shape[0])), grid


def monthly_figure(report: Report) -> go.Figure:
    years, grid = monthly_returns(report)
    fig = go.Figure(
        go.Heatmap(
            z=grid,
            x=list(MONTHS),
            y=[str(year) for year in years],
            colorscale="RdYlGn",
            zmid=0,
            texttemplate="%{z:.1f}",
            hovertemplate="%{y} %{x}: %{z:.2f}%<extra></extra>",
            colorbar={"title": {"text": "%"}},
            xgap=2,
            ygap=2,
        )
    )
    fig = _layout(fig, "Monthly returns (%)", "year")
    fig.update_yaxes(autorange="reversed", type="category", zeroline=False)
    fig.update_layout(height=max(220, 90 + 40 * len(years)), hovermode="closest")
    return fig


def rolling_window(sessions: int) -> int:
    """126 sessions (6 months), or a third of a shorter report so its chart still has points."""
    return ROLLING_SHARPE_SESSIONS if sessions >= 2 * ROLLING_SHARPE_SESSIONS else max(sessions // 3, 2)


def rolling_sharpe(equity: FloatArray, window: int) -> FloatArray:
    """Annualised Sharpe (risk-free 0, sample std) of each `window` daily returns; NaN where the std is 0."""
    returns = equity[1:] / equity[:-1] - 1
    if returns.size < window:
        return np.empty(0)
    windows = np.lib.stride_tricks.sliding_window_view(returns, window)
    std = windows.std(axis=1, ddof=1)
    mean = windows.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 0, mean / std * np.sqrt(SESSIONS_PER_YEAR), np.nan)


def rolling_sharpe_figure(report: Report) -> go.Figure:
    equity = np.asarray(report.series.equity, dtype=np.float64)
    window = rolling_window(equity.size)
    sharpe = rolling_sharpe(equity, window)
    x = _days(report.series.sessions)[window : window + sharpe.size]
    fig = go.Figure(
        go.Scatter(x=x, y=sharpe, name=f"{window}-session Sharpe", mode="lines", line={"color": STRATEGY_COLOUR})
    )
    title = f"Rolling {window}-session Sharpe (annualised)"
    if window != ROLLING_SHARPE_SESSIONS:
        title += f": the report is shorter than {2 * ROLLING_SHARPE_SESSIONS} sessions, so not the usual 6 months"
    if window < MIN_ROLLING_WINDOW:
        title += " (too few sessions: noise, not a measure)"
    return _layout(fig, title, "Sharpe")


def exposure_figure(report: Report) -> go.Figure:
    x = _days(report.series.sessions)
    fig = go.Figure()
    for tier, values in sorted(report.series.exposure_by_tier_pct.items()):
        fig.add_trace(go.Scatter(x=x, y=np.asarray(values), name=tier, mode="lines", stackgroup="exposure"))
    fig = _layout(fig, "Exposure by tier (positions' value, % of equity)", "exposure", y_suffix="%")
    fig.update_layout(legend={"traceorder": "normal"})  # TIER1 first, as in the tables (stacks list top-down)
    return fig


def _naive_utc(times: tuple[tuple[datetime, float], ...]) -> tuple[list[datetime], list[float]]:
    # plotly.js reads an offset-less ISO time; the ledger's times are UTC, and so is the axis.
    return [t.astimezone(UTC).replace(tzinfo=None) for t, _ in times], [price for _, price in times]


def symbol_figure(marks: PriceMarks) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=_days(marks.sessions), y=np.asarray(marks.closes), name="close", mode="lines", line={"color": "#555"}
        )
    )
    for name, points, symbol, colour in (
        ("entry", marks.entries, "triangle-up", ENTRY_COLOUR),
        ("exit", marks.exits, "triangle-down", EXIT_COLOUR),
    ):
        x, y = _naive_utc(points)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                name=name,
                mode="markers",
                marker={"symbol": symbol, "size": 9, "color": colour, "line": {"width": 0.5, "color": "#222"}},
            )
        )
    fig = _layout(fig, f"{marks.symbol}: price with entries and exits", "price ($)")
    fig.update_layout(hovermode="closest")
    return fig


def report_figures(report: Report) -> dict[str, go.Figure]:
    """Every chart of the report, keyed by its element id, in the order the report shows them."""
    figures = {
        "chart-equity": equity_figure(report),
        "chart-drawdown": drawdown_figure(report),
        "chart-monthly": monthly_figure(report),
        "chart-rolling-sharpe": rolling_sharpe_figure(report),
        "chart-exposure": exposure_figure(report),
    }
    for marks in report.top_symbols:
        figures[f"chart-symbol-{marks.symbol}"] = symbol_figure(marks)
    return figures
