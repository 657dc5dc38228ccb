"""The ways a file gets damaged on disk, for the tests of what each SQLite owner does with a bad file."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

from core.private_files import SQLITE_SIDECARS

DAMAGE = ("random_bytes", "truncated", "zero_bytes")


def damage(path: Path, how: str) -> bytes:
    """Damage the (closed) file at `path` in place; returns its new content, which must survive being set aside."""
    if how == "random_bytes":
        content = random.Random(7).randbytes(64 * 1024)
    elif how == "truncated":
        whole = path.read_bytes()
        assert len(whole) > 4 * 4096, "truncate a file of several pages"
        content = whole[: len(whole) // 2]
    elif how == "zero_bytes":
        content = b""
    else:
        raise ValueError(f"unknown damage {how!r}")
    path.write_bytes(content)
    return content


def foreign_database(path: Path, *statements: str) -> bytes:
    """Write a sound SQLite file that is not ours (its own tables) at `path`; returns its content."""
    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()
    return path.read_bytes()


def assert_set_aside(path: Path, content: bytes, logs: list[dict[str, Any]], event: str) -> None:
    """`path` was set aside once, as it was (never deleted), and the one warning logged names where it went."""
    [moved] = [p for p in path.parent.glob(f"{path.name}.corrupt-*") if not p.name.endswith(SQLITE_SIDECARS)]
    assert moved.read_bytes() == content
    assert [(e["event"], e["moved_to"]) for e in logs if e["log_level"] == "warning"] == [(event, str(moved))]
