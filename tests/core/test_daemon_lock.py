"""The daemon lock: one holder per state directory, released at exit, released by the kernel when the holder dies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.daemon_lock import LOCK_FILE, StateInUseError, acquire_daemon_lock

# Takes the lock, says so on stdout, then holds it until its stdin closes (or it is killed): no sleeps, no timing.
HOLDER = """
import sys
from pathlib import Path
from core.daemon_lock import acquire_daemon_lock
lock = acquire_daemon_lock(Path(sys.argv[1]), "run")
print("locked", flush=True)
sys.stdin.read()
lock.release()
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = start_holder(tmp_path / "sim")
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


def start_holder(state_dir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"  # blocks until the lock is held
    return proc


def test_the_holder_writes_its_pid_start_time_and_command(tmp_path: Path) -> None:
    now = datetime(2026, 12, 2, 3, 30, tzinfo=UTC)
    with acquire_daemon_lock(tmp_path / "sim", "replay", now=now) as lock:
        assert lock.held
        info = json.loads((tmp_path / "sim" / LOCK_FILE).read_text())
        assert info == {"pid": os.getpid(), "started": "2026-12-02T03:30:00Z", "command": "replay"}
    assert not lock.held


def test_a_second_taker_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    state = tmp_path / "sim"
    now = datetime(2026, 12, 2, 3, 30, tzinfo=UTC)
    with acquire_daemon_lock(state, "run", now=now):
        # flock conflicts between two open file descriptions even inside one process.
        with pytest.raises(StateInUseError) as refused:
            acquire_daemon_lock(state, "replay")
        assert str(refused.value) == (
            f"{state} is in use by tradingd pid {os.getpid()} (started 2026-12-02T03:30:00Z, run); one daemon per state"
        )
    with acquire_daemon_lock(state, "replay"):  # released at exit: the next one takes it
        assert json.loads((state / LOCK_FILE).read_text())["command"] == "replay"


def test_release_twice_is_harmless_and_the_file_stays(tmp_path: Path) -> None:
    lock = acquire_daemon_lock(tmp_path / "paper", "run")
    lock.release()
    lock.release()
    assert (tmp_path / "paper" / LOCK_FILE).exists()  # never deleted: see the module docstring


def test_a_holder_in_another_process_is_named(holder: subprocess.Popen[str], tmp_path: Path) -> None:
    with pytest.raises(StateInUseError, match=rf"in use by tradingd pid {holder.pid} \(started .*Z, run\)"):
        acquire_daemon_lock(tmp_path / "sim", "run")


def test_a_killed_holder_leaves_no_stale_lock(holder: subprocess.Popen[str], tmp_path: Path) -> None:
    holder.kill()  # SIGKILL: no cleanup runs in the holder
    holder.wait()
    assert json.loads((tmp_path / "sim" / LOCK_FILE).read_text())["pid"] == holder.pid  # the stale text is there
    with acquire_daemon_lock(tmp_path / "sim", "replay"):
        info = json.loads((tmp_path / "sim" / LOCK_FILE).read_text())
        assert info["pid"] == os.getpid()  # overwritten, not appended to
        assert info["command"] == "replay"


def test_a_holder_that_has_not_written_yet_is_still_refused(tmp_path: Path) -> None:
    import fcntl  # noqa: PLC0415 - only this test locks by hand

    state = tmp_path / "sim"
    state.mkdir()
    fd = os.open(state / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(StateInUseError, match="another tradingd process"):
            acquire_daemon_lock(state, "run")
    finally:
        os.close(fd)
