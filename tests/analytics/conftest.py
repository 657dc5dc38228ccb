from __future__ import annotations

import pytest

from analytics.model import Report
from tests.analytics.sample_report import small_report


@pytest.fixture
def report() -> Report:
    """A small realistic report: 60 sessions, 8 round trips, 2 tiers, a benchmark, exposure, 2 symbols' marks."""
    return small_report()
