"""What tests read straight from a state DB file because the program only writes it: the journal and the equity
curve. A connection of its own, so it sees what was committed, as another process would."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any


def journal_rows(path: Path, last: int | None = None) -> list[dict[str, Any]]:
    """The journal in order (only the `last` rows, if given), each with its payload decoded."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT seq, msg_id, type, ts_event, correlation_id, payload FROM journal ORDER BY seq DESC LIMIT ?",
            (-1 if last is None else last,),
        ).fetchall()
    return [
        {"seq": seq, "id": msg_id, "type": kind, "ts_event": ts, "correlation_id": cid, "payload": json.loads(payload)}
        for seq, msg_id, kind, ts, cid, payload in reversed(rows)
    ]


def journal_count(path: Path, type_name: str) -> int:
    """How many journal rows are of this message type."""
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM journal WHERE type = ?", (type_name,)).fetchone()[0])


def equity_curve(path: Path) -> list[tuple[date, Decimal]]:
    """(session, last equity of that session), oldest first."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT session, last_equity FROM equity_marks ORDER BY session").fetchall()
    return [(date.fromisoformat(session), Decimal(equity)) for session, equity in rows]
