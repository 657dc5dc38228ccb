"""A state store in a fresh folder, its set-aside files named at a fixed time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store import StateStore
from tests.core.store.records import QUARANTINE_TIME


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "state.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[StateStore]:
    with StateStore(db_path, utc_now=lambda: QUARANTINE_TIME) as s:
        yield s
