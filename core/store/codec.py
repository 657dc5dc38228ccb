"""How money and times become the state DB's TEXT columns and come back exactly.

Money and quantities are stored as `str(Decimal)`, so a `Decimal` comes back exactly as it went in (representation
included: "159.5400" stays "159.5400"). Datetimes are fixed-width ISO-8601 UTC with microseconds, so string order is
time order and `MAX(ts)` or `ts >= ?` compare instants.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal


def time_text(value: datetime) -> str:
    """Fixed-width UTC ISO-8601 (always with microseconds), so that string order is time order."""
    # An iteration's rows share a handful of instants (the clock's now, a bar's stamp): each is formatted once.
    if value.tzinfo is not UTC:  # a local time's fold is not part of its hash: 01:30 EDT and EST would collide
        return _format_time(value)
    text = _TIME_TEXT.get(value)
    if text is None:
        if len(_TIME_TEXT) >= _TIME_TEXT_MAX:
            _TIME_TEXT.clear()
        text = _TIME_TEXT[value] = _format_time(value)
    return text


# Keyed by the UTC datetime (only UTC values are cached: local ones are formatted each time).
_TIME_TEXT: dict[datetime, str] = {}
_TIME_TEXT_MAX = 4096


def _format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the store only takes timezone-aware datetimes")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def time_text_or_none(value: datetime | None) -> str | None:
    return None if value is None else time_text(value)


def parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def decimal_text_or_none(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def parse_decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)
