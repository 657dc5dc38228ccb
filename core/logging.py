"""structlog, configured once per command: one pipeline, two sinks.

- **Log file** (the daemon only, `DATA_DIR/<mode>/logs/tradingd.log`): every event at LOG_LEVEL as one JSON object
  per line, rotated by size (`LOG_FILE_MAX_BYTES` × `LOG_FILE_BACKUPS` kept). Whatever the console shows, the file
  has the whole story: per-iteration lines, orders, fills.
- **Console** (stderr, so `--json` output on stdout stays one clean JSON object): LOG_FORMAT=json prints JSON lines;
  auto/console print readable `key=value` lines, coloured only on a terminal (no escape codes in a pipe). During a
  replay the console shows warnings and errors only (the progress display stands in for the per-session info
  lines); in real time (paper/live) it shows LOG_LEVEL and one `FILL …` line per fill.

The router is a structlog processor rather than stdlib handlers so an event costs one dict walk per sink and events
dropped by LOG_LEVEL cost nothing (the bound logger filters them before any processor runs).
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import MutableMapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import orjson
import structlog

from core.private_files import private_dir, private_file
from core.redact import install_stdlib_redaction, redact_event

LOG_FILE_NAME = "tradingd.log"
LOG_FILE_MAX_BYTES = 20 * 1024 * 1024
LOG_FILE_BACKUPS = 5
FILL_EVENT = "order_filled"
FILE_ONLY = "file_only"  # an event key: write the event to the log file, never to the console

_LEVELS = logging.getLevelNamesMapping()
_router: _Router | None = None
# The level below which the last `configure_logging` made structlog drop lines (NOTSET: nothing dropped, structlog's
# defaults, which is also what the process has after `close_logging`).
_dropped_below = logging.NOTSET


def info_enabled() -> bool:
    """Whether an INFO line is kept. A hot path (a line per order, stop or fill) asks first, so a level that drops
    the line (the benchmarks' ERROR) costs neither the line's fields nor structlog's per-call `bind`. Never stricter
    than structlog's own filter: after `close_logging` (or before any configuration) it says yes."""
    return _dropped_below <= logging.INFO


def log_file_path(data_dir: Path, mode: str) -> Path:
    """`DATA_DIR/<mode>/logs/tradingd.log`: beside the mode's state DB, outside anything a sim reset deletes."""
    return data_dir / mode / "logs" / LOG_FILE_NAME


def _stderr_logger(*_: object) -> structlog.PrintLogger:
    # Resolved at each logger's creation, not at configuration: test runners swap the stream, and rich's progress
    # display redirects stderr so log lines print above the bar.
    return structlog.PrintLogger(sys.stderr)


def _json_default(value: Any) -> str:
    return str(value)  # Decimal, Path, enums, exceptions: their str() is what a reader wants


def render_fill(event: MutableMapping[str, Any]) -> str:
    """`FILL buy 12.5 AAPL @ 171.20 (coid …)`: the one console line a person watching a live daemon needs."""
    return (
        f"FILL {event.get('side', '?')} {_short(event.get('qty'), None)} {event.get('symbol', '?')}"
        f" @ {_short(event.get('price'), 2)} (coid {event.get('client_order_id', '?')})"
    )


def _short(value: object, places: int | None) -> str:
    """A quantity without trailing zeros, a price to the cent; anything unparsable as it came."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if not number.is_finite():
        return str(value)
    if places is not None:
        return f"{number:,.{places}f}"
    return f"{number.normalize():f}"


class _Router:
    """The last processor: tee the event to the log file, then render it for the console or drop it there."""

    def __init__(
        self,
        console: structlog.types.Processor,
        *,
        console_level: int,
        human: bool,
        file_handler: _PrivateRotatingFileHandler | None,
    ) -> None:
        self._console = console
        self._console_level = console_level
        self._human = human
        self.file_handler = file_handler

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> str:
        level = _LEVELS.get(str(event_dict.get("level", "info")).upper(), logging.INFO)
        # For events the command also tells the person in its own words (an error line, a "halted" line): the
        # file keeps the record, the console does not say it twice.
        file_only = bool(event_dict.pop(FILE_ONLY, False))
        handler = self.file_handler
        if handler is not None:
            # Serialised before the console renderer runs: ConsoleRenderer pops keys off the dict.
            try:
                line = orjson.dumps(event_dict, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()
            except TypeError:  # e.g. an int too large for orjson: still one JSON object per line
                line = orjson.dumps({k: str(v) for k, v in event_dict.items()}).decode()
            handler.write_line(line)
        if file_only or level < self._console_level:
            raise structlog.DropEvent
        if self._human and event_dict.get("event") == FILL_EVENT:
            return render_fill(event_dict)
        rendered: str = self._console(logger, method_name, event_dict)  # type: ignore[assignment]
        return rendered

    def close(self) -> None:
        if self.file_handler is not None:
            self.file_handler.close()
            self.file_handler = None


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Log files are 0600, the first one and every file a rollover opens.

    The router hands it finished lines (`write_line`): no `LogRecord`, no formatter, and the size kept as a count
    of the bytes written instead of a seek and two `stat`s per line (the stdlib's `shouldRollover`), so a replay's
    tens of thousands of order lines cost a write each. Each line is flushed, as before: a crash loses none.
    """

    def _open(self) -> Any:
        private_file(Path(self.baseFilename))
        stream = super()._open()
        self._size = stream.seek(0, 2)  # appending: the file's size so far counts towards the rollover
        return stream

    def write_line(self, line: str) -> None:
        data = line + "\n"
        size = len(data.encode()) if not data.isascii() else len(data)
        self.acquire()
        try:
            if self.stream is None:  # closed by a rollover that failed to reopen
                self.stream = self._open()
            if self.maxBytes > 0 and self._size > 0 and self._size + size >= self.maxBytes:
                self.doRollover()  # reopens through `_open`, which resets the count
            self.stream.write(data)
            self.stream.flush()
            self._size += size
        except Exception:
            self._report_failure()
        finally:
            self.release()

    def _report_failure(self) -> None:
        # `handleError` wants a record only to print it; the line is lost either way, the caller goes on.
        self.handleError(logging.makeLogRecord({"msg": "log file write failed"}))


def open_log_file(path: Path) -> _PrivateRotatingFileHandler:
    private_dir(path.parent)
    handler = _PrivateRotatingFileHandler(
        path, maxBytes=LOG_FILE_MAX_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def configure_logging(
    fmt: Literal["auto", "json", "console"] = "auto",
    level: str = "INFO",
    *,
    log_file: Path | None = None,
    replay: bool = False,
    quiet: bool = False,
) -> None:
    """(Re)configure logging for this process; a previously opened log file is closed first."""
    global _router  # noqa: PLW0603 - configuration is process-wide by nature
    close_logging()
    install_stdlib_redaction()  # alpaca-py and websockets log through stdlib logging, not structlog
    threshold = _LEVELS[level.upper()]
    human = fmt != "json"
    console: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()) if human else structlog.processors.JSONRenderer()
    )
    _router = _Router(
        console,
        # A replay runs a year in seconds: its info lines would flood the terminal, so they stay in the file.
        # `quiet`: a one-shot command (halt, resume) whose result line says it all; its events go to the file.
        console_level=logging.CRITICAL + 1 if quiet else max(threshold, logging.WARNING) if replay else threshold,
        human=human,
        file_handler=open_log_file(log_file) if log_file is not None else None,
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            # After the traceback is rendered to text, before the router tees: the file and console get one text.
            redact_event,
            _router,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    global _dropped_below  # noqa: PLW0603 - mirrors the process-wide structlog configuration just made
    _dropped_below = threshold


def current_log_file() -> _PrivateRotatingFileHandler | None:
    """The open log file's handler (tests check its rotation settings), or None."""
    return _router.file_handler if _router is not None else None


def close_logging() -> None:
    """Flush and close the log file; later events go to the console only."""
    global _dropped_below  # noqa: PLW0603 - see `info_enabled`: a later reconfiguration may log every level
    _dropped_below = logging.NOTSET
    if _router is not None:
        _router.close()
