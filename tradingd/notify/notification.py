"""What the observer hands the sender: one frozen message, already formatted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from core.notify_kinds import NotifyKind


@dataclass(frozen=True, slots=True)
class EquityChart:
    """The equity curve a digest attaches as a PNG: drawn by the sender when the message goes out (a dropped
    digest never pays for matplotlib)."""

    sessions: tuple[date, ...]
    equity: tuple[float, ...]
    title: str


@dataclass(frozen=True, slots=True)
class Notification:
    kind: NotifyKind
    title: str
    body: str
    chart: EquityChart | None = None
