"""structlog, configured once: ISO UTC timestamps, contextvars, JSON when not a TTY, console on a TTY.

Logs go to stderr so that `--json` output on stdout stays one clean JSON object.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

_configured = False


def _stderr_logger(*_: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


def configure_logging(fmt: Literal["auto", "json", "console"] = "auto", level: str = "INFO") -> None:
    global _configured  # noqa: PLW0603 - configuration is process-wide by nature
    use_console = sys.stderr.isatty() if fmt == "auto" else fmt == "console"
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if use_console
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        # Resolve sys.stderr at each logger's creation, not now: test runners and daemons may swap the stream.
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    _configured = True
