"""The ways a file gets damaged on disk, for the tests of what each SQLite owner does with a bad file."""

from __future__ import annotations

import random
from pathlib import Path

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
