"""The journal of published events: the `journal` table, appended once per iteration and pruned to its retention.

A row is one message: its id, type name, `ts_event` and correlation id in their own columns, every other field in a
JSON payload (a nested message by reference, a bar frame as a summary, money as exact text), with any secret masked.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, NamedTuple

import orjson

from core.messages import Message
from core.redact import redact
from core.sqlite_db import SqliteDb
from core.store.codec import time_text
from core.types import BarFrame

# Fields of a message that get their own journal columns, so the payload does not repeat them.
_JOURNAL_COLUMNS: Final = frozenset({"id", "ts_event", "correlation_id"})
_INSERT_JOURNAL: Final = "INSERT INTO journal (msg_id, type, ts_event, correlation_id, payload) VALUES (?, ?, ?, ?, ?)"


class JournalRow(NamedTuple):
    """One stored row as read back: the payload is the JSON text the journal wrote."""

    seq: int
    ts_event: str
    type: str
    payload: str


class Journal:
    """The `journal` table, on its owner's connection and transaction."""

    def __init__(self, db: SqliteDb) -> None:
        self._db = db
        self._conn = db.conn

    def append(self, events: Sequence[Message]) -> None:
        """Append published events, in order."""
        if not events:
            return
        self._conn.executemany(_INSERT_JOURNAL, [_journal_row(e) for e in events])

    def prune(self, before: datetime, *, batch: int = 10_000) -> int:
        """Delete journal rows whose `ts_event` is before `before`; returns how many were deleted.

        In batches, each its own short transaction: a first prune of a long-running store must not hold the write
        lock for long (status and halt write to the same file concurrently).
        """
        cutoff = time_text(before)
        total = 0
        while True:
            with self._db.transaction():
                deleted = self._conn.execute(
                    "DELETE FROM journal WHERE seq IN (SELECT seq FROM journal WHERE ts_event < ? LIMIT ?)",
                    (cutoff, batch),
                ).rowcount
            total += deleted
            if deleted < batch:
                return total

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0])

    def latest(self, types: Sequence[str], limit: int) -> list[JournalRow]:
        """The newest rows of these message types (class names), newest first: what the dashboard lists."""
        if not types or limit <= 0:
            return []
        marks = ", ".join("?" * len(types))
        sql = f"SELECT seq, ts_event, type, payload FROM journal WHERE type IN ({marks}) ORDER BY seq DESC LIMIT ?"  # noqa: S608 - marks only
        return [
            JournalRow(int(seq), ts, kind, payload)
            for seq, ts, kind, payload in self._conn.execute(sql, (*types, limit))
        ]


def _journal_row(event: Message) -> tuple[int, str, str, str, str]:
    cls = type(event)
    fields = _PAYLOAD_FIELDS.get(cls)
    if fields is None:
        names = tuple(f.name for f in dataclasses.fields(cls) if f.name not in _JOURNAL_COLUMNS)
        fields = _PAYLOAD_FIELDS[cls] = (names, _values_of(names))
    names, values = fields
    payload = dict(zip(names, values(event), strict=True))
    return (
        event.id,
        cls.__name__,
        time_text(event.ts_event),
        event.correlation_id,
        # Rejection reasons and error details travel in payloads; one scan of the text masks any secret in them.
        redact(orjson.dumps(payload, default=_json_default, option=_JSON_OPTIONS).decode()),
    )


# Per message class: its payload's field names and one getter reading them all (the journal writes every message
# the pipeline publishes, a hundred thousand and more in a replay).
_PAYLOAD_FIELDS: dict[type, tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]] = {}


def _values_of(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    if len(names) == 1:  # attrgetter of one name returns the value, not a tuple
        name = names[0]
        return lambda event: (getattr(event, name),)
    if not names:
        return lambda event: ()
    return operator.attrgetter(*names)


# orjson serialises str/int/float/bool/None, datetimes, enums, lists and dicts natively (NaN/inf become null: JSON has
# no such numbers, and the journal never invents one); everything else goes through _json_default.
_JSON_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):  # the common case first: money and quantities
        return str(value)
    if isinstance(value, Message):
        # A message nested in another (the signal inside SignalValidated, OrderDenied, …) is journaled on its own,
        # so a reference by id is enough here.
        return {"ref": value.id, "type": type(value).__name__}
    if isinstance(value, BarFrame):
        # The bars themselves are market data, not state; the journal records what the agents saw.
        last = str(value.timestamps[-1]) if value.n_rows else None
        return {"symbols": value.n_symbols, "rows": value.n_rows, "last_bar": last}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    import numpy as np  # noqa: PLC0415 - reached by arrays and sets only; `tradingd status` never loads numpy

    if isinstance(value, np.ndarray):
        return {"shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, MappingProxyType):
        return dict(value)  # a message's read-only counts (`frozen_counts`)
    return str(value)
