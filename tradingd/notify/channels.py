"""The notification channels: one apprise service per URL of NOTIFY_URLS. The only module that imports apprise,
and only when a daemon has NOTIFY_URLS (it takes ~0.1 s to import: `status` and `--help` never pay for it).

A channel is named `<scheme>#<position>` (`tgram#1`) in every log line: the URL holds the token, so it is never
shown, not even masked by apprise's own privacy mode.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from core.errors import SetupError


class Channel(Protocol):
    """Where a message goes. `send` returns whether the service took it; it never raises for a refusal."""

    name: str
    supports_attachments: bool

    def send(self, title: str, body: str, attachment: Path | None) -> bool: ...


class AppriseChannel:
    def __init__(self, service: Any, name: str) -> None:
        import apprise  # noqa: PLC0415 - see the module docstring

        self.name = name
        self.supports_attachments = bool(getattr(service, "attachment_support", False))
        self._apprise = apprise.Apprise()
        self._apprise.add(service)

    def send(self, title: str, body: str, attachment: Path | None) -> bool:
        attach = str(attachment) if attachment is not None and self.supports_attachments else None
        return bool(self._apprise.notify(body=body, title=title, attach=attach))


def _scheme(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep and scheme.isalnum() else "?"


def parse_channels(urls: str) -> list[AppriseChannel]:
    """One channel per comma-separated URL, or a `SetupError` naming NOTIFY_URLS, the entry's position and its
    scheme (never the URL: it holds the token)."""
    import apprise  # noqa: PLC0415

    apprise_log = logging.getLogger("apprise")
    channels: list[AppriseChannel] = []
    entries = [entry.strip() for entry in urls.split(",") if entry.strip()]
    for position, url in enumerate(entries, start=1):
        scheme = _scheme(url)
        # apprise logs a URL it cannot parse, whole, at ERROR: silenced here, the SetupError below says what is wrong.
        apprise_log.setLevel(logging.CRITICAL + 1)
        try:
            service = apprise.Apprise.instantiate(url)
        finally:
            # It logs every send at INFO and the URL it posts to at DEBUG: only its warnings reach our log.
            apprise_log.setLevel(logging.WARNING)
        if service is None:
            raise SetupError(
                f"NOTIFY_URLS: entry {position} (scheme {scheme}) is not a URL apprise can use"
                " (unknown scheme or missing parts; see https://github.com/caronc/apprise/wiki)"
            )
        channels.append(AppriseChannel(service, f"{scheme}#{position}"))
    if not channels:
        raise SetupError("NOTIFY_URLS: no URL in the value")
    return channels


def check_notify_urls(urls: str | None) -> None:
    """The set-up check of `run`, `replay` and `validate`: every URL parses (nothing is sent)."""
    if urls:
        parse_channels(urls)
