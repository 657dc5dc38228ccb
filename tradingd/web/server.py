"""Running the dashboard: uvicorn on a socket bound up front, in a thread of its own beside the daemon
(`start_dashboard`), or in the foreground (`tradingd serve`).

The socket is bound before the server starts, so a port already taken is known at once: `serve` exits 2 naming it,
the daemon logs `dashboard_failed` and trades on. The daemon's thread runs uvicorn with its own event loop; nothing
in the trading loop waits on it, and anything it raises ends in the log (`dashboard_failed`), never in the loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import structlog
import uvicorn
from fastapi import FastAPI

from config.settings import Settings
from core.bus import EventBus
from core.errors import SetupError
from core.logging import FILE_ONLY
from core.redact import redact
from tradingd.web.app import create_app
from tradingd.web.health import HealthMonitor, StreamProbe
from tradingd.web.live_feed import LiveFeed
from tradingd.web.selection import CandidatePredictor
from tradingd.web.token import dashboard_access

log = structlog.get_logger("tradingd.web")

STOP_WAIT_SECONDS: Final = 5.0


class PortUnavailableError(SetupError):
    """DASHBOARD_HOST:DASHBOARD_PORT cannot be bound (taken, or not an address of this machine)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one), or `PortUnavailableError` naming them."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        raise PortUnavailableError(f"DASHBOARD_HOST: {host!r} cannot be bound: {error.strerror or error}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        raise PortUnavailableError(
            f"DASHBOARD_PORT: {host}:{port} cannot be bound: {error.strerror or error}"
        ) from None
    sock.set_inheritable(True)
    return sock


class UvicornToStructlog(logging.Handler):
    """uvicorn's own records (an endpoint's traceback: "Exception in ASGI application") into the project's structlog
    pipeline: masked (`redact_event`), in the JSON log file, never raw on stderr. Its info lines (started, shutting
    down) are dropped: `dashboard_started` says it."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING:
            return
        try:
            fields: dict[str, Any] = {"message": record.getMessage(), "logger": record.name, FILE_ONLY: True}
            if record.exc_info is not None:
                fields["exc_info"] = record.exc_info
            if record.levelno >= logging.ERROR:
                log.error("dashboard_server_error", **fields)
            else:
                log.warning("dashboard_server_warning", **fields)
        except Exception:
            self.handleError(record)


def route_uvicorn_logs() -> None:
    """With `log_config=None` uvicorn's loggers have no handler: without this a traceback would reach stderr through
    logging's last-resort handler, unmasked and outside the JSON log. Idempotent."""
    logger = logging.getLogger("uvicorn")
    if not any(isinstance(handler, UvicornToStructlog) for handler in logger.handlers):
        logger.addHandler(UvicornToStructlog())
    logger.propagate = False


def _config(app: FastAPI) -> uvicorn.Config:
    # No access log: a URL or header never reaches a log line; the structlog pipeline logs what matters.
    route_uvicorn_logs()
    return uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=2)


class DashboardServer:
    """uvicorn serving `app` on `sock`; `start()` in a daemon thread, or `run()` in the foreground."""

    def __init__(self, app: FastAPI, sock: socket.socket) -> None:
        self._server = uvicorn.Server(_config(app))
        self._sock = sock
        self._thread: threading.Thread | None = None
        self.failed: BaseException | None = None

    @property
    def host(self) -> str:
        return str(self._sock.getsockname()[0])

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        host = self.host
        return f"http://[{host}]:{self.port}/" if ":" in host else f"http://{host}:{self.port}/"

    def run(self) -> None:
        """In the foreground (`tradingd serve`): until SIGINT/SIGTERM."""
        self._server.run(sockets=[self._sock])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve_in_thread, name="dashboard", daemon=True)
        self._thread.start()

    def _serve_in_thread(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except BaseException as error:
            self.failed = error
            log.error("dashboard_failed", error=redact(str(error)), kind=type(error).__name__)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_WAIT_SECONDS)
        self._sock.close()


@dataclass(frozen=True, slots=True)
class DaemonDashboard:
    server: DashboardServer
    feed: LiveFeed
    health: HealthMonitor


def start_dashboard(
    settings: Settings,
    bus: EventBus,
    *,
    tiers: dict[str, Any],
    stream: StreamProbe | None = None,
    predictor: CandidatePredictor | None = None,
    metrics: Callable[[], tuple[bytes, str]] | None = None,
) -> DaemonDashboard | None:
    """With DASHBOARD_ENABLED, the API and page beside the daemon; None when it is off or cannot start (logged
    `dashboard_failed`: trading goes on without it). The observers are attached to `bus` first."""
    if not settings.dashboard_enabled:
        return None
    feed, health = LiveFeed(), HealthMonitor(stream)
    try:
        access = dashboard_access(settings)
        app = create_app(settings, access, tiers=tiers, feed=feed, health=health, predictor=predictor, metrics=metrics)
        server = DashboardServer(app, bind(settings.dashboard_host, settings.dashboard_port))
        server.start()
    except Exception as error:
        log.error("dashboard_failed", error=redact(str(error)), kind=type(error).__name__)
        return None
    feed.attach(bus)
    health.attach(bus)
    log.info(
        "dashboard_started",
        url=server.url,
        token_file=None if access.token_file is None else str(access.token_file),
        token_from="DASHBOARD_TOKEN" if access.token_file is None else "token_file",
    )
    return DaemonDashboard(server, feed, health)


def stop_dashboard(dashboard: DaemonDashboard | None) -> None:
    if dashboard is not None:
        dashboard.server.stop()
