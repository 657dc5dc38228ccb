"""`tradingd serve`: the dashboard and API alone, over the state DB of `--mode` (a running daemon's, or the last
state a stopped one left). No daemon, so no live feed (the page polls) and health comes from the journal.

Exit 2 with one line when the state DB does not exist, the port is taken, or a non-loopback DASHBOARD_HOST has no
DASHBOARD_TOKEN.
"""

from __future__ import annotations

import typer

from core.errors import SetupError
from core.logging import close_logging, configure_logging, log_file_path
from core.redact import redact
from core.types import TradingMode
from tradingd.cli_common import load_cli_settings, log
from tradingd.cli_options import EXIT_BAD_INPUT
from tradingd.local_state import configured_tiers, state_db_path


def _fail(message: str) -> typer.Exit:
    typer.echo(redact(f"error: {message}"), err=True)
    return typer.Exit(EXIT_BAD_INPUT)


def serve(mode: TradingMode | None, host: str | None, port: int | None) -> None:
    settings = load_cli_settings(broker=False, trading_mode=mode, dashboard_host=host, dashboard_port=port)
    db = state_db_path(settings)
    if not db.is_file():
        raise _fail(f"no state DB at {db}: no daemon has run with this DATA_DIR and mode yet (--mode, DATA_DIR)")
    from tradingd.web.app import create_app
    from tradingd.web.server import DashboardServer, bind
    from tradingd.web.token import dashboard_access

    try:
        tiers = configured_tiers(settings)
        access = dashboard_access(settings)
        sock = bind(settings.dashboard_host, settings.dashboard_port)
    except SetupError as error:
        raise _fail(str(error)) from None
    log_file = log_file_path(settings.data_dir, settings.mode.value)
    configure_logging(settings.log_format, settings.log_level, log_file=log_file)
    from tradingd.metrics import metrics_text

    server = DashboardServer(create_app(settings, access, tiers=tiers, metrics=lambda: metrics_text(db, None)), sock)
    token_note = "DASHBOARD_TOKEN" if access.token_file is None else f"the token is in {access.token_file}"
    log.info("dashboard_serving", url=server.url, db=str(db), token_file=str(access.token_file or ""))
    typer.echo(f"dashboard ({settings.mode.value}): {server.url}  state DB {db}; {token_note}; Ctrl-C stops it")
    try:
        server.run()
    finally:
        close_logging()
