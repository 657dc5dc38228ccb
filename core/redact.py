"""Secret redaction: one place that knows the API key and secret, and scrubs them out of any text.

Every error text that reaches the console, the log file, the journal or the state DB passes through `redact`
(the structlog processor in `core/logging.py`, stdlib log records, the CLI's error lines, the store's order reasons
and journal payloads). An exception message can quote a secret in ways no call site predicts (a server echoing the
request, an HTTP library quoting a header), so the values themselves are searched for, not the places they may hide.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any

from pydantic import SecretStr

MASK = "***"
# Shorter values would mask ordinary words and numbers in every line; no real key is this short.
_MIN_LENGTH = 4

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def register_secrets(*values: str | SecretStr | None) -> None:
    """Remember secret values (and their stripped forms, defensively) for every later `redact`."""
    global _secrets  # noqa: PLW0603 - the secrets are process-wide, like the settings they come from
    found: set[str] = set(_secrets)
    for value in values:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not text:
            continue
        for form in (text, text.strip()):
            if len(form) >= _MIN_LENGTH:
                found.add(form)
    with _lock:
        # Longest first: a secret containing another is masked whole, not leaving a tail behind.
        _secrets = tuple(sorted(found, key=len, reverse=True))


def register_settings(settings: Any) -> None:
    """Register the Alpaca key and secret and the dashboard's token of a `config.settings.Settings` (duck-typed:
    config imports core), and the notification URLs with the tokens and passwords inside them."""
    register_secrets(
        getattr(settings, "alpaca_api_key", None),
        getattr(settings, "alpaca_secret_key", None),
        getattr(settings, "dashboard_token", None),
    )
    urls = getattr(settings, "notify_urls", None)
    if isinstance(urls, SecretStr):
        register_secrets(*notify_url_secrets(urls.get_secret_value()))


# A part of a URL this long is a token (Telegram's bot token, a Slack or Discord webhook's), never an ordinary word.
_TOKEN_LENGTH = 16


def notify_url_secrets(urls: str) -> list[str]:
    """What to mask of comma-separated notification URLs (apprise): each URL whole, its password, and every part
    long enough to be a token (host, user, path segment, query value). A Telegram URL carries its bot token as the
    host, a Discord one in its path: the parts are registered too, so a library quoting only one is masked."""
    from urllib.parse import parse_qsl, urlsplit  # noqa: PLC0415 - only for daemons with notifications

    found: list[str] = []
    for url in (part.strip() for part in urls.split(",")):
        if not url:
            continue
        found.append(url)
        try:
            parts = urlsplit(url)
            password = parts.password
        except ValueError:  # not URL-shaped at all: the whole text is masked, which is all there is to mask
            continue
        # The raw netloc, split by hand: `hostname` is lower-cased, and a Telegram token (`123:AbC…`) is no port.
        netloc = parts.netloc
        pieces = [netloc, *netloc.replace("@", ":").split(":"), *parts.path.split("/")]
        pieces += [value for _, value in parse_qsl(parts.query)]
        if password:
            found.append(password)
        found.extend(piece for piece in pieces if len(piece) >= _TOKEN_LENGTH)
    return found


def clear_secrets() -> None:
    """Forget every registered value (tests)."""
    global _secrets  # noqa: PLW0603
    with _lock:
        _secrets = ()


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `***`; the same object when there is nothing to hide."""
    secrets = _secrets
    if not secrets:
        return text
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_value(value: Any) -> Any:
    """`value` with secrets masked in every string it holds (dicts, lists, tuples); other values unchanged."""
    if not _secrets:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_value(v) for v in value)
    if isinstance(value, BaseException):
        # Rendered as text by every sink anyway; masking the text keeps the secret out of all of them.
        return redact(f"{type(value).__name__}: {value}")
    return value


def redact_event(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secrets in every value (after exc_info is rendered, before the router tees)."""
    if not _secrets:
        return event_dict
    for key, value in event_dict.items():
        event_dict[key] = redact_value(value)
    return event_dict


_factory_installed = False


def install_stdlib_redaction() -> None:
    """Mask secrets in stdlib log records too (alpaca-py, websockets, urllib3 log through `logging`)."""
    global _factory_installed  # noqa: PLW0603
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _secrets:
            try:
                message = record.getMessage()
            except Exception:
                message = str(record.msg)
            record.msg = redact(message)
            record.args = None
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True
