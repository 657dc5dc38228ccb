"""The dashboard's bearer token and where the server may bind (README "Dashboard and API", Security).

- `DASHBOARD_HOST` other than a loopback address needs `DASHBOARD_TOKEN` (a `SetupError`: exit 2, one line).
- Unset on loopback: a token is generated once, stored in `DATA_DIR/<mode>/dashboard_token` (0600), and reused; only
  its path is ever logged or printed.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from config.settings import Settings, is_loopback_host
from core.errors import SetupError
from core.private_files import private_dir
from core.redact import register_secrets
from tradingd.local_state import state_db_path

TOKEN_FILE: Final = "dashboard_token"  # noqa: S105 - a file name, not a secret
MIN_TOKEN_CHARS: Final = 16  # shorter is guessable; a generated one is 43 characters
_FILE_MODE: Final = 0o600


@dataclass(frozen=True, slots=True)
class DashboardAccess:
    """What the server enforces: the token, whether reads need it too, and where a generated token is kept."""

    token: str
    reads_need_token: bool
    token_file: Path | None  # None: the token came from DASHBOARD_TOKEN


def token_path(settings: Settings) -> Path:
    return state_db_path(settings).parent / TOKEN_FILE


def check_bind(settings: Settings) -> None:
    """Refuse to serve beyond this machine without a token, or with a token too short to guard anything."""
    token = settings.dashboard_token
    if token is None and not is_loopback_host(settings.dashboard_host):
        raise SetupError(
            f"DASHBOARD_TOKEN: must be set when DASHBOARD_HOST ({settings.dashboard_host}) is not a loopback "
            "address: anyone on the network could halt trading"
        )
    if token is not None and len(token.get_secret_value().strip()) < MIN_TOKEN_CHARS:
        raise SetupError(f"DASHBOARD_TOKEN: must be at least {MIN_TOKEN_CHARS} characters")


def dashboard_access(settings: Settings) -> DashboardAccess:
    """The token the server checks: DASHBOARD_TOKEN, else the stored one (generated at the first start)."""
    check_bind(settings)
    reads_need_token = not is_loopback_host(settings.dashboard_host)
    if settings.dashboard_token is not None:
        return DashboardAccess(settings.dashboard_token.get_secret_value().strip(), reads_need_token, None)
    path = token_path(settings)
    token = _read_or_create(path)
    register_secrets(token)  # from now on no log line or error text can carry it
    return DashboardAccess(token, reads_need_token, path)


def _read_or_create(path: Path) -> str:
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    except OSError as error:
        raise SetupError(f"{path}: the dashboard token cannot be read: {error.strerror or error}") from None
    if len(existing) >= MIN_TOKEN_CHARS:
        os.chmod(path, _FILE_MODE)  # a copy from before, or from another tool, is made private again
        return existing
    token = secrets.token_urlsafe(32)
    try:
        private_dir(path.parent)
        # O_EXCL on a fresh name, then rename: the token never sits in a file another user could read.
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
        os.replace(temporary, path)
    except OSError as error:
        raise SetupError(f"{path}: the dashboard token cannot be written: {error.strerror or error}") from None
    return token
