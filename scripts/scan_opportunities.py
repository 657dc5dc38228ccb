"""The daily 4:05 PM ET scanner, runnable alone: the same command as `tradingd scan`.

    python -m scripts.scan_opportunities [--json] [--as-of YYYY-MM-DD] [--mode sim|paper|live]
    python scripts/scan_opportunities.py  [same options]

It reads the 20-day volume averages from the cache, so refresh the cache first (only stale entries are fetched):

    # crontab (cron needs the New York zone; 16:05 is also after an early close's 13:05)
    CRON_TZ=America/New_York
    5 16 * * 1-5  cd /opt/tradingd && .venv/bin/tradingd cache refresh --stale \
                  && .venv/bin/python -m scripts.scan_opportunities --json >> var/scan.log 2>&1
    (one line in the crontab; split here for width)

    # systemd: tradingd-scan.service (Type=oneshot, WorkingDirectory=/opt/tradingd,
    #   ExecStartPre=/opt/tradingd/.venv/bin/tradingd cache refresh --stale,
    #   ExecStart=/opt/tradingd/.venv/bin/python -m scripts.scan_opportunities --json)
    # and tradingd-scan.timer:
    #   [Timer]
    #   OnCalendar=Mon..Fri *-*-* 16:05:00 America/New_York
    #   Persistent=true

On a holiday the script scans the last completed session again (same `as_of`), which is harmless. The daemon does
not need either: with USE_SCANNER=true it runs the scan itself at close + 5 minutes on every NYSE session.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the project's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import typer

from core.cli_scan import scan


def main() -> None:
    typer.run(scan)


if __name__ == "__main__":
    main()
