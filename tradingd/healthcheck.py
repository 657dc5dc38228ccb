"""The container's health check (`python -m tradingd.healthcheck`, Dockerfile and compose.yaml): `GET /api/health`
on the dashboard inside the container answers 200.

Exit 0 when healthy, 1 otherwise with one line saying why (Docker keeps it in `docker inspect`). python:3.11-slim has
no curl; this uses the standard library only and imports nothing else of tradingd (it runs every minute: it must be
cheap). The token is sent when set: off loopback the API asks for it on reads too.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 5.0


def health_url(environ: dict[str, str]) -> str:
    port = environ.get("DASHBOARD_PORT") or "8765"
    return f"http://127.0.0.1:{port}/api/health"


def check(environ: dict[str, str]) -> str | None:
    """None when healthy, else the reason."""
    request = urllib.request.Request(health_url(environ))  # noqa: S310 - http on loopback, built here
    token = environ.get("DASHBOARD_TOKEN")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - the URL above
            if response.status != 200:
                return f"{request.full_url}: HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"{request.full_url}: HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        return f"{request.full_url}: {error}"
    return None


def main() -> int:
    problem = check(dict(os.environ))
    if problem is None:
        return 0
    print(f"unhealthy: {problem}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
