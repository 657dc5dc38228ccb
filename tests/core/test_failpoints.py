"""Failpoints kill with SIGKILL on the armed visit, and only when the test-hooks flag is also set."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from core.failpoints import _parse

SCRIPT = """
from core.failpoints import failpoint
for _ in range(3):
    failpoint("submit.after_broker")
    print("visit")
"""


def _run(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRADINGD_")}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], env={**clean, **env}, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_armed_visit_dies_by_sigkill() -> None:
    done = _run(TRADINGD_TEST_HOOKS="1", TRADINGD_FAILPOINT="submit.after_broker:2")
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.count("visit") == 1  # the second visit never printed


def test_without_the_hooks_flag_a_failpoint_is_ignored() -> None:
    done = _run(TRADINGD_FAILPOINT="submit.after_broker:1")
    assert done.returncode == 0
    assert done.stdout.count("visit") == 3


@pytest.mark.parametrize("spec", ["no.such.point:1", "submit.after_broker", "submit.after_broker:0"])
def test_a_misspelt_failpoint_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="TRADINGD_FAILPOINT"):
        _parse(spec)
