"""The report's CSV files: the round-trip ledger (every `RoundTrip` field, one row per trip) and the equity series
(`session,equity,benchmark_equity`, one row per session)."""

from __future__ import annotations

import csv
import dataclasses
import enum
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from analytics.model import Report, RoundTrip

LEDGER_COLUMNS = tuple(f.name for f in dataclasses.fields(RoundTrip))
EQUITY_COLUMNS = ("session", "equity", "benchmark_equity")


def _cell(value: object) -> str:
    """ISO times and dates, exact decimals, enum values; an absent value (no tier, no benchmark yet) is empty."""
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, Decimal):
        return f"{value:f}"
    return str(value)


def write_ledger_csv(report: Report, path: Path) -> int:
    """One row per round trip in the ledger's order (by exit time); returns the number of rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(LEDGER_COLUMNS)
        writer.writerows([_cell(getattr(trip, name)) for name in LEDGER_COLUMNS] for trip in report.ledger)
    return len(report.ledger)


def write_equity_csv(report: Report, path: Path) -> int:
    """One row per session: end-of-day equity and the benchmark's (scaled to the start equity; empty before it
    starts); returns the number of rows."""
    series = report.series
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(EQUITY_COLUMNS)
        writer.writerows(
            (session.isoformat(), f"{equity:.2f}", "" if bench is None else f"{bench:.2f}")
            for session, equity, bench in zip(series.sessions, series.equity, series.benchmark_equity, strict=True)
        )
    return len(series.sessions)
