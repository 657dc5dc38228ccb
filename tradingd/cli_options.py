"""Option types and exit codes shared by every `tradingd` command, so each option reads and renders the same
everywhere.

Flags carry an empty metavar: typer would otherwise show `--json <bool>` in `--help`, which reads as if the flag
took a value (`--json true` is a usage error). Dates are typer datetimes with one format, so `--help` shows the
format and a malformed date is a usage error (exit 2) before any command code runs.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import typer

from core.types import TradingMode

DATE_FORMATS = ["%Y-%m-%d"]

EXIT_BAD_INPUT = 2  # bad input or configuration
EXIT_FAILURE = 1  # any other failure

ModeOpt = Annotated[TradingMode | None, typer.Option("--mode", help="sim | paper | live (overrides TRADING_MODE)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout at the end", metavar="")]
AsOfOpt = Annotated[
    datetime | None,
    typer.Option("--as-of", formats=DATE_FORMATS, help="Sim only: the session to scan (default: the last bundled one)"),
]
# `cache refresh` scans nothing: its --as-of picks the session whose scan the averages are for.
RefreshAsOfOpt = Annotated[
    datetime | None,
    typer.Option(
        "--as-of",
        formats=DATE_FORMATS,
        help="Sim only: refresh the averages a scan of this session needs, i.e. through the session before it"
        " (default: the last bundled one)",
    ),
]


def as_date(value: datetime | None) -> date | None:
    """typer parses dates to midnight datetimes; the commands work with calendar dates."""
    return value.date() if value is not None else None
