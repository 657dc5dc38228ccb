"""The daily 4:05 PM ET scanner, runnable alone: the same command as `tradingd scan`.

    python -m scripts.scan_opportunities [--json] [--as-of YYYY-MM-DD] [--mode sim|paper|live]
    python scripts/scan_opportunities.py  [same options]

It brings the 20-day volume averages it needs up to date first (only missing or out-of-date entries are fetched), so
it needs no other command, on a fresh clone or in a timer:

    # crontab (cron needs the New York zone; 16:05 is also after an early close's 13:05)
    CRON_TZ=America/New_York
    5 16 * * 1-5  cd /opt/tradingd && .venv/bin/python -m scripts.scan_opportunities --json >> var/scan.log 2>&1

    # systemd: tradingd-scan.service (Type=oneshot, WorkingDirectory=/opt/tradingd,
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

from tradingd.cli_scan import scan


def main() -> None:
    typer.run(scan)


if __name__ == "__main__":
    main()
