"""`create_app`: the dashboard's FastAPI application (README "Dashboard and API" lists every endpoint).

Why FastAPI: the OpenAPI page (`/docs`) comes for free from the typed endpoints and records (`records.py`), the
responses are validated against those records, and server-sent events are a plain async generator. uvicorn runs it in
a thread of its own (`server.py`).

Reads go through `StateReader` (a read-only connection per request, in FastAPI's worker threads); `POST /api/halt`
and `/api/resume` run exactly what `tradingd halt` / `resume` run (`tradingd/cli_state.py::halt_state`,
`resume_state`), on a connection of their own.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.resources
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response, status
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from agents.risk import daily_loss_reference
from config.settings import Settings
from core.candidates import CandidatesError, read_candidates
from core.clock import NyseCalendar
from core.errors import SetupError
from core.redact import redact
from core.store import StateStore
from core.store.equity import EquityMark
from core.timeconv import ny_instant
from core.types import OrderStatus, Tier, TradingMode, order_statuses_named
from tradingd.cli_state import halt_state, resume_state
from tradingd.local_state import state_db_path
from tradingd.web.auth import read_guard, write_guard
from tradingd.web.body_limit import BodyLimit
from tradingd.web.health import HealthMonitor
from tradingd.web.hosts import allowed_hosts
from tradingd.web.live_feed import LiveFeed
from tradingd.web.portfolio import PortfolioRiskCache
from tradingd.web.records import (
    ActionResult,
    CandidateRow,
    Candidates,
    Connectivity,
    EquityCurve,
    EquityPoint,
    FillRow,
    HaltRequest,
    Health,
    OrderRow,
    PortfolioRiskBody,
    PositionRow,
    RecentWarning,
    SmartSelection,
    Status,
    TradingStateView,
)
from tradingd.web.redacting import RedactJson
from tradingd.web.report_cache import ReportCache
from tradingd.web.selection import (
    CandidatePredictor,
    candidate_predictions,
    number_or_none,
    risk_metrics,
    top_performers,
    top_scores,
)
from tradingd.web.state_reader import StateMissingError, StateReader
from tradingd.web.token import DashboardAccess

SIM_CANDIDATES_NAME: Final = "candidates.json"  # tradingd/app.py::SIM_CANDIDATES (that module loads the daemon)
STREAM_POLL_SECONDS: Final = 0.5  # how often the SSE generator looks at the feed (server side only)
STREAM_KEEPALIVE_SECONDS: Final = 15.0
MAX_LIST: Final = 5_000  # rows of orders/fills one answer carries at most (the newest)
MetricsSource = Callable[[], tuple[bytes, str]]


def static_dir() -> Path:
    return Path(str(importlib.resources.files("tradingd.web") / "static"))


def plotly_js() -> Path:
    """plotly.js from the installed plotly package: served by the daemon, no CDN (works offline)."""
    return Path(str(importlib.resources.files("plotly") / "package_data" / "plotly.min.js"))


def candidates_path(settings: Settings) -> Path:
    """The focus file the daemon of this mode reads: a replay's own beside its state, else CANDIDATES_FILE."""
    if settings.mode is TradingMode.SIM:
        return state_db_path(settings).parent / SIM_CANDIDATES_NAME
    return settings.candidates_file


def _bad_request(message: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, detail=message)


def parse_day(name: str, value: str | None) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise _bad_request(f"{name}: {value[:40]!r} is not a date (YYYY-MM-DD)") from None


def parse_statuses(value: str | None) -> set[OrderStatus] | None:
    if value is None or value == "":
        return None
    try:
        return order_statuses_named(value)
    except ValueError as error:
        raise _bad_request(f"status: {error}") from None


def create_app(
    settings: Settings,
    access: DashboardAccess,
    *,
    tiers: Mapping[str, Tier] | None = None,
    feed: LiveFeed | None = None,
    health: HealthMonitor | None = None,
    predictor: CandidatePredictor | None = None,
    metrics: MetricsSource | None = None,
) -> FastAPI:
    """The app over the mode's state DB. `feed`/`health`: the daemon's observers (None in `tradingd serve`: the page
    polls, health comes from the journal); `predictor`: the ML model (issue 16), None gives `null` probabilities;
    `metrics`: the Prometheus exposition (body, content type) served at `/metrics` when given."""
    reader = StateReader(settings, state_db_path(settings), tiers or {})
    reports = ReportCache(settings)
    portfolio_risk = PortfolioRiskCache(settings)
    reads = [Depends(read_guard(access))]
    writes = [Depends(write_guard(access))]
    app = FastAPI(
        title="tradingd dashboard API",
        version="1",
        description="The running daemon's state, read from its state DB; halt and resume. README: Dashboard and API.",
        # FastAPI's own /docs loads Swagger UI from a CDN and neither it nor /openapi.json takes a dependency: both
        # are served below instead, the schema behind the read guard, the page offline (static/docs.html).
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(RedactJson)
    # DNS rebinding: a foreign Host gets 400 before anything reads the state (hosts.py).
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(settings.dashboard_host), www_redirect=False)
    app.add_middleware(BodyLimit)  # added last: outermost, so an oversized body never reaches anything else

    @app.exception_handler(StateMissingError)
    async def _missing(_: Request, error: StateMissingError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)

    @app.exception_handler(SetupError)
    async def _setup(_: Request, error: SetupError) -> JSONResponse:
        return JSONResponse({"detail": redact(str(error))}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)

    # ---- the page and its assets -------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(static_dir() / "index.html", media_type="text/html")

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly() -> FileResponse:
        return FileResponse(plotly_js(), media_type="text/javascript")

    app.mount("/static", StaticFiles(directory=static_dir()), name="static")

    @app.get("/openapi.json", dependencies=reads, include_in_schema=False)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        # A static shell like `/`: it fetches the guarded /openapi.json with the tab's token and lists the endpoints.
        return FileResponse(static_dir() / "docs.html", media_type="text/html")

    # ---- reads -------------------------------------------------------------------------------------------------

    @app.get("/api/status", dependencies=reads, response_model=Status, summary="Trading state, equity, exposure")
    def get_status() -> Status:
        with reader.store() as store:
            mark = store.latest_equity_mark()
            counts = store.summary()
            equity = None if mark is None else mark.last_equity
            return Status(
                mode=settings.mode.value,
                db=str(reader.db),
                live_feed=feed is not None,
                trading_state=reader.trading_state(store),
                session=None if mark is None else mark.session,
                equity=None if equity is None else f"{equity:.2f}",
                peak_equity=None if mark is None else f"{reader.drawdown_peak(store, mark):.2f}",
                positions=counts["positions"],
                open_orders=counts["orders"]["open"],
                fills=counts["fills"],
                orders_by_status=counts["orders"]["by_status"],
                breakers=reader.breakers(store),
                exposure=reader.exposure(store, equity),
                limits={
                    "max_daily_loss_pct": float(settings.max_daily_loss_pct * 100),
                    "max_drawdown_pct": float(settings.max_drawdown_pct * 100),
                    "max_open_positions": settings.max_open_positions,
                    "max_position_pct": float(settings.max_position_pct * 100),
                },
                portfolio=PortfolioRiskBody(**portfolio_risk.get(store)),
            )

    @app.get("/api/positions", dependencies=reads, response_model=list[PositionRow], summary="Positions, P&L")
    def get_positions() -> list[PositionRow]:
        with reader.store() as store:
            return reader.positions(store)

    @app.get("/api/orders", dependencies=reads, response_model=list[OrderRow], summary="Stored orders")
    def get_orders(
        status_: Annotated[
            str | None, Query(alias="status", description="open (every working status) or one order status")
        ] = None,
    ) -> list[OrderRow]:
        statuses = parse_statuses(status_)
        with reader.store() as store:
            return reader.orders(store, statuses)[-MAX_LIST:]

    @app.get("/api/fills", dependencies=reads, response_model=list[FillRow], summary="Stored fills")
    def get_fills(
        since: Annotated[str | None, Query(description="fills on or after this New York day, YYYY-MM-DD")] = None,
    ) -> list[FillRow]:
        day = parse_day("since", since)
        with reader.store() as store:
            return reader.fills(store, None if day is None else ny_instant(day))[-MAX_LIST:]

    @app.get("/api/equity", dependencies=reads, response_model=EquityCurve, summary="Equity vs the benchmark")
    def get_equity(
        from_: Annotated[str | None, Query(alias="from", description="first session, YYYY-MM-DD")] = None,
        to: Annotated[str | None, Query(description="last session, YYYY-MM-DD")] = None,
    ) -> EquityCurve:
        start, end = parse_day("from", from_), parse_day("to", to)
        if start is not None and end is not None and start > end:
            raise _bad_request(f"from {start} is after to {end}")
        with reader.store() as store:
            marks = reader.equity_marks(store, start, end)
            report = reports.latest_or_build(store)
        bench: dict[date, float | None] = {}
        name = None
        if report is not None:
            bench = dict(zip(report.series.sessions, report.series.benchmark_equity, strict=True))
            name = None if report.benchmark is None else report.benchmark.name
        return EquityCurve(
            points=[
                EquityPoint(session=m.session, equity=float(round(m.last_equity, 2)), benchmark=bench.get(m.session))
                for m in marks
            ],
            benchmark=name,
        )

    @app.get("/api/candidates", dependencies=reads, response_model=Candidates, summary="The latest scan's picks")
    def get_candidates() -> Candidates:
        path = candidates_path(settings)
        try:
            found = read_candidates(path)
        except CandidatesError as error:
            return Candidates(as_of=None, generated_at=None, file=str(path), candidates=[], note=redact(str(error)))
        predictions = candidate_predictions(found.candidates, found.as_of, predictor)
        rows = []
        for item in found.candidates:
            prediction = predictions.get(str(item["symbol"]))
            rank = item.get("rank")
            rows.append(
                CandidateRow(
                    symbol=str(item["symbol"]),
                    rank=rank if isinstance(rank, int) and not isinstance(rank, bool) else None,
                    score=item["score"],  # the required numbers: validated finite when the file was read
                    zscore=item["zscore"],
                    rvol=item["rvol"],
                    price=item["price"],
                    momentum=number_or_none(item, "momentum"),  # optional: anything else than a number is null
                    volatility=number_or_none(item, "volatility"),
                    dollar_volume=number_or_none(item, "dollar_volume"),
                    reason=str(item["reason"]),
                    win_probability=None if prediction is None else prediction.win_probability,
                )
            )
        note = None if rows else "the latest scan found no candidates"
        return Candidates(
            as_of=found.as_of,
            generated_at=found.generated_at.isoformat(),
            file=str(path),
            candidates=rows,
            note=note,
        )

    @app.get("/api/smart-selection", dependencies=reads, response_model=SmartSelection, summary="Scores, risk")
    def get_smart_selection() -> SmartSelection:
        try:
            found = read_candidates(candidates_path(settings))
        except CandidatesError:
            candidates: Sequence[Mapping[str, Any]] = ()
            as_of = None
        else:
            candidates, as_of = found.candidates, found.as_of
        with reader.store() as store:
            mark = store.latest_equity_mark()
            peak = None if mark is None else reader.drawdown_peak(store, mark)
            reference = None if mark is None else _daily_loss_reference(store, mark)
            state = reader.trading_state(store).state
            performers = top_performers(store)
        return SmartSelection(
            top_scores=top_scores(candidates, candidate_predictions(candidates, as_of, predictor)),
            top_performers=performers,
            risk_metrics=risk_metrics(
                mark,
                reference,
                peak,
                max_daily_loss=settings.max_daily_loss_pct,
                max_drawdown=settings.max_drawdown_pct,
                state=state,
            ),
        )

    @app.get("/api/report", dependencies=reads, summary="The reports issue's JSON (tradingd report --json)")
    def get_report() -> dict[str, Any]:
        from analytics.model import report_json  # noqa: PLC0415 - with the report only

        with reader.store() as store:
            report = reports.get(store)
        if report is None:
            return {"mode": settings.mode.value, "sessions": 0, "message": "nothing to report yet"}
        return report_json(report)

    @app.get("/api/warnings", dependencies=reads, response_model=list[RecentWarning], summary="Recent warnings")
    def get_warnings(limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[RecentWarning]:
        with reader.store() as store:
            return reader.warnings(store, limit)

    @app.get("/api/health", dependencies=reads, response_model=Health, summary="Liveness and connectivity")
    def get_health() -> Health:
        return _health(settings, reader, health)

    @app.get("/api/stream", dependencies=reads, summary="Server-sent events of the daemon (not in `serve`)")
    async def stream(last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
        if feed is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no live feed: `tradingd serve` has no daemon")
        try:
            start, reset = feed.resume_point(last_event_id) if last_event_id else (feed.last_seq, False)
        except ValueError:
            raise _bad_request("Last-Event-ID: not an event id of this dashboard (<boot>:<seq>)") from None
        return StreamingResponse(
            _events(feed, start, reset=reset), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    if metrics is not None:
        source = metrics

        @app.get("/metrics", dependencies=reads, summary="Prometheus metrics")
        def get_metrics() -> Response:
            body, content_type = source()
            return Response(content=body, media_type=content_type)

    # ---- actions (token always) --------------------------------------------------------------------------------

    @app.post("/api/halt", dependencies=writes, response_model=ActionResult, summary="The kill switch (tradingd halt)")
    def post_halt(request: HaltRequest) -> ActionResult:
        reason = request.reason.strip()
        if not reason:
            raise _bad_request("reason: must not be blank")
        # Stored as the CLI stores it, prefixed with where it came from; a pasted secret never reaches the state DB.
        message = halt_state(settings, redact(f"dashboard: {reason}"), request.reduce_only)
        return ActionResult(message=message, trading_state=_state_now(reader))

    @app.post("/api/resume", dependencies=writes, response_model=ActionResult, summary="tradingd resume")
    def post_resume() -> ActionResult:
        message = resume_state(settings)
        return ActionResult(message=message, trading_state=_state_now(reader))

    return app


@functools.cache
def _calendar() -> NyseCalendar:
    return NyseCalendar()  # built once (the schedule), on the first smart-selection request


def _daily_loss_reference(store: StateStore, mark: EquityMark) -> Decimal:
    """The daily-loss breaker's own reference for the mark's session (the same function the orchestrator uses)."""
    try:
        return daily_loss_reference(store, _calendar(), mark.session, mark.start_equity)
    except ValueError:  # a session outside the calendar's range: the breaker would not have one either
        return mark.start_equity


def _state_now(reader: StateReader) -> TradingStateView:
    with reader.store() as store:
        return reader.trading_state(store)


async def _events(feed: LiveFeed, start: int, *, reset: bool = False) -> AsyncIterator[bytes]:
    """The SSE body: every event after `start`, then new ones as they come; a comment line keeps proxies open.
    `reset`: the client's last id was another process's (the daemon restarted): it reloads, then gets this one's."""
    seq = start
    idle = 0.0
    yield b"retry: 3000\n\n"
    if reset:
        yield f"event: reset\nid: {feed.event_id(start)}\ndata: {{}}\n\n".encode()
    while True:
        events, gap = feed.after(seq)
        # One write a poll, however many events: a paced replay publishes hundreds between polls, and a write per
        # event to a client that has just gone would reach the dead socket hundreds of times before the loop hears
        # of it (asyncio's "socket.send() raised exception." on stderr each time).
        lines = [f"event: reset\nid: {feed.event_id(feed.last_seq)}\ndata: {{}}\n\n"] if gap else []
        for event in events:
            lines.append(f"id: {feed.event_id(event.seq)}\nevent: {event.kind}\ndata: {event.data}\n\n")
            seq = event.seq
        if events:
            idle = 0.0
        else:
            idle += STREAM_POLL_SECONDS
            if idle >= STREAM_KEEPALIVE_SECONDS:
                idle = 0.0
                lines.append(": keepalive\n\n")
        if lines:
            yield "".join(lines).encode()
        await asyncio.sleep(STREAM_POLL_SECONDS)


def _health(settings: Settings, reader: StateReader, monitor: HealthMonitor | None) -> Health:
    mode = settings.mode.value
    if monitor is not None:
        snap = monitor.snapshot()
        if snap.last_iteration is None and snap.last_error is None:
            broker = Connectivity(connected=None, reason="no iteration has run yet")
        elif snap.last_error is not None:
            broker = Connectivity(
                connected=False, reason="the last tick was cut short by a broker error", last_error=snap.last_error
            )
        else:
            broker = Connectivity(connected=True, reason="the last iteration completed")
        if monitor.stream is None:
            stream = Connectivity(connected=None, reason="no stream in sim: the simulated broker answers in process")
        else:
            up = monitor.stream()
            stream = Connectivity(connected=up, reason="trade-updates stream " + ("connected" if up else "down"))
        return Health(
            status=_overall(broker, stream),
            mode=mode,
            source="daemon",
            last_iteration=snap.last_iteration,
            last_iteration_at=snap.last_iteration_at,
            broker=broker,
            stream=stream,
        )
    with reader.store() as store:
        done = reader.last_of(store, "IterationCompleted")
        failed = reader.last_of(store, "IterationFailed")
    if done is None and failed is None:
        broker = Connectivity(connected=None, reason="the journal holds no iteration")
    elif failed is not None and (done is None or failed[0] > done[0]):
        detail = f"{failed[2].get('kind')}: {failed[2].get('detail', '')}"
        broker = Connectivity(connected=False, reason="journal: the last tick failed", last_error=redact(detail))
    else:
        broker = Connectivity(connected=True, reason="journal: the last recorded iteration completed")
    return Health(
        status="unknown" if broker.connected is None else ("ok" if broker.connected else "degraded"),
        mode=mode,
        source="journal",
        last_iteration=None if done is None else done[2].get("iteration"),
        last_iteration_at=None if done is None else done[1],
        broker=broker,
        stream=Connectivity(connected=None, reason="tradingd serve has no daemon to ask: stream state unknown"),
    )


def _overall(broker: Connectivity, stream: Connectivity) -> Any:
    if broker.connected is False or stream.connected is False:
        return "degraded"
    return "unknown" if broker.connected is None else "ok"
