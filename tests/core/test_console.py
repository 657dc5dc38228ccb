"""The download progress of core/console.py: a line per 10% in a pipe, nothing for a single request."""

from __future__ import annotations

import io

from core.console import DownloadProgress


def test_a_piped_download_prints_one_plain_line_per_tenth() -> None:
    out = io.StringIO()
    progress = DownloadProgress("volume cache refresh", stream=out, live=False)
    for done in range(500, 10_001, 500):  # 20 chunks of 500 symbols
        progress(done, 10_000)
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "volume cache refresh 10% (1000/10000 symbols)"
    assert lines[-1] == "volume cache refresh 100% (10000/10000 symbols)"
    assert len(lines) == 10
    assert "\x1b" not in out.getvalue()


def test_a_download_of_one_request_shows_nothing() -> None:
    out = io.StringIO()
    progress = DownloadProgress("volume cache refresh", stream=out, live=True)
    progress(495, 495)
    progress.close()
    assert out.getvalue() == ""


def test_on_a_terminal_it_draws_a_bar_and_stops_cleanly() -> None:
    out = io.StringIO()
    progress = DownloadProgress("volume cache refresh", stream=out, live=True)
    for done in (200, 400, 500):
        progress(done, 500)
    progress.close()
    assert "volume cache refresh" in out.getvalue()
