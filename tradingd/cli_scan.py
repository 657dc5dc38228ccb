"""`tradingd scan`, `tradingd validate` and `tradingd cache refresh`, registered onto the main typer app.

    from tradingd.cli_scan import register
    register(app)

`scan` sets itself up: it first refreshes the volume cache entries it needs (missing or out of date only), so a
fresh clone needs no other command. `validate` only checks, never fixes: a check that fails names the command that
fixes it.

Exit codes follow the CLI contract: 0 success, 2 bad input or configuration, 1 any other failure (for `validate`:
any FAIL). With `--json` one JSON object is printed on stdout at the end; logs stay on stderr.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from tradingd.cli_options import AsOfOpt, JsonOpt, ModeOpt, RefreshAsOfOpt, as_date

# The commands import what they run when they run: registering them onto the app (for `tradingd --help`, or any
# other command) loads no pandas, numpy, settings or market data (docs/ARCHITECTURE.md §Performance, start-up).
if TYPE_CHECKING:
    from datetime import date

    from agents.daily_scan import ScanResult
    from config.settings import Settings
    from core.types import TradingMode
    from core.volume_cache import RefreshStats
    from tradingd.scan_runtime import ScanRuntime

T = TypeVar("T")

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1
FRESH_SHARE_REQUIRED = 0.9  # `validate`: at least this share of cache entries must be current
RVOL_SAMPLE = 200


def _mode_override(mode: TradingMode | None) -> dict[str, Any]:
    # No `--mode` must leave TRADING_MODE (or the keys) in charge, so None is not passed on as a value.
    return {"trading_mode": mode} if mode is not None else {}


def _settings(mode: TradingMode | None) -> Settings:
    from config.settings import ConfigError, load_settings
    from core.logging import configure_logging
    from core.redact import redact

    try:
        settings = load_settings(mode_source="--mode {}" if mode else "TRADING_MODE={}", **_mode_override(mode))
    except ConfigError as error:
        typer.echo(redact(str(error)), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    configure_logging(settings.log_format, settings.log_level)
    return settings


def _runtime(settings: Settings, as_of: date | None) -> ScanRuntime:
    from core.redact import redact
    from tradingd.scan_runtime import ScanSetupError, open_runtime

    try:
        return open_runtime(settings, as_of)
    except ScanSetupError as error:
        typer.echo(redact(f"error: {error}"), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def _fail(message: str) -> typer.Exit:
    from core.redact import redact

    typer.echo(redact(f"error: {message}"), err=True)
    return typer.Exit(EXIT_FAILURE)


def _run(step: Coroutine[Any, Any, T]) -> T:
    """Run a scan or refresh; a bad universe or rejected keys are bad input (2), unreachable data a failure (1)."""
    import asyncio

    from core.broker.base import AuthenticationError, BrokerError
    from core.redact import redact
    from core.universe import UniverseError

    try:
        return asyncio.run(step)
    except (UniverseError, AuthenticationError) as error:
        typer.echo(redact(f"error: {error}"), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except BrokerError as error:  # after the adapter's own retries
        raise _fail(f"market data unavailable: {error}") from None


def _as_of_flag(as_of: date | None) -> str:
    return f" --as-of {as_of}" if as_of else ""


# ---- scan ---------------------------------------------------------------------------------------------------------


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def format_scan(payload: dict[str, Any], mode: str, path: Path) -> str:
    stats = payload["stats"]
    lines = [
        f"== tradingd scan ({mode}) as of {payload['as_of']}: {len(payload['candidates'])} candidates "
        f"from {stats['universe']} symbols ({stats['universe_source']}) ==",
        f"{'#':>3}  {'symbol':8}{'score':>7}{'z':>8}{'rvol':>8}{'price':>10}{'chg%':>8}{'expl%':>7}  sector",
    ]
    for c in payload["candidates"]:
        boom = "-" if c["explosion_probability"] is None else f"{c['explosion_probability']:.1f}"
        lines.append(
            f"{c['rank']:>3}  {c['symbol']:8}{c['score']:>7.2f}{c['zscore']:>8.2f}{c['rvol']:>8.2f}"
            f"{c['price']:>10.2f}{c['change_pct']:>8.2f}{boom:>7}  {c['sector'] or ''}"
        )
    lines.append(f"baseline: {', '.join(payload['baseline']) or 'none'}")
    lines.append("why:")
    lines.extend(f"  {c['symbol']}: {c['reason']}" for c in payload["candidates"])
    lines.append("stages:")
    for stage in stats["stages"]:
        rejected = _counts(stage["rejected"])
        lines.append(
            f"  {stage['name']:10}{stage['ms']:>9.3f} ms  {stage['in']:>6} -> {stage['out']:<6} {rejected}".rstrip()
        )
    cache = stats["cache"]
    rate = "n/a" if cache["hit_rate"] is None else f"{cache['hit_rate']:.1%}"
    lines.append(
        f"volume cache: {cache['hits']}/{cache['looked_up']} fresh ({rate}), expected as_of {cache['expected_as_of']}"
        f", missing {cache['missing']}, stale {cache['stale']}, ahead {cache['ahead']}"
    )
    refresh = stats.get("cache_refresh")
    if refresh is not None:
        lines.append(
            f"volume cache refresh: {refresh['written']} written, {refresh['incomplete']} without 20 complete "
            f"sessions (no entry), {refresh['skipped_fresh']} already fresh; {refresh['api_calls']} API calls"
        )
    lines.append(
        f"compute {stats['compute_ms']:.3f} ms, elapsed {stats['elapsed_ms']:.1f} ms, api calls {stats['api_calls']}"
    )
    lines.append(f"written: {path}")
    return "\n".join(lines)


def _log_refresh(stats: RefreshStats, entries_before: int, path: Path) -> None:
    import structlog

    if not (stats.written or stats.incomplete):
        return  # every entry was already current: nothing was fetched, nothing to report
    # Info, not a warning: building the cache on the first scan (or catching up a day) is the normal path.
    structlog.get_logger(__name__).info(
        "volume_cache_built" if entries_before == 0 else "volume_cache_refreshed",
        symbols=stats.written,
        without_20_sessions=stats.incomplete,
        already_fresh=stats.skipped_fresh,
        through=stats.through.isoformat(),
        api_calls=stats.api_calls,
        path=str(path),
    )


async def scan_with_fresh_cache(
    runtime: ScanRuntime, on_progress: Callable[[int, int], None] | None = None
) -> tuple[RefreshStats, ScanResult]:
    """Refresh the missing or out-of-date volume averages (one batched pass), then scan with them.

    The universe is loaded once for both. On a cache that is already current this fetches nothing."""
    from core.universe import LoadedUniverse

    universe = await runtime.universe.load()
    with runtime.open_cache() as cache:
        entries_before = int(cache.summary()["entries"])
        refresh = await runtime.refresh_cache(cache, universe, stale_only=True, on_progress=on_progress)
        _log_refresh(refresh, entries_before, cache.path)
        result = await runtime.scanner(cache).run(
            LoadedUniverse(universe), as_of=runtime.as_of, now=runtime.clock.now()
        )
    return refresh, result


def scan(mode: ModeOpt = None, as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """Refresh the volume cache where needed, scan the whole universe once and write candidates.json."""
    from core.candidates import CandidatesError, write_candidates
    from core.console import DownloadProgress

    settings = _settings(mode)
    runtime = _runtime(settings, as_date(as_of))
    progress = DownloadProgress("volume cache refresh")
    try:
        refresh, result = _run(scan_with_fresh_cache(runtime, progress))
    finally:
        progress.close()
    payload = result.payload()
    payload["stats"]["cache_refresh"] = refresh.as_dict()
    cache = payload["stats"]["cache"]
    if not cache["hits"]:
        # The refresh just ran: no symbol has 20 complete sessions before this one. An --as-of too early in the data
        # is refused up front (exit 2); this is what is left, e.g. bars missing from the data.
        raise _fail(
            f"no symbol has a 20-day volume average for {runtime.as_of} (20 complete sessions through "
            f"{cache['expected_as_of']}); nothing written"
        )
    path = settings.candidates_file
    t0 = time.perf_counter()
    try:
        write_candidates(path, payload)
    except (CandidatesError, OSError) as error:
        raise _fail(f"cannot write {path}: {error}") from None
    write_ms = round((time.perf_counter() - t0) * 1000, 3)
    if as_json:
        typer.echo(json.dumps({**payload, "candidates_file": str(path), "write_ms": write_ms}))
    else:
        typer.echo(format_scan(payload, settings.mode.value, path))


# ---- cache refresh ------------------------------------------------------------------------------------------------


async def _refresh(
    runtime: ScanRuntime, stale: bool, on_progress: Callable[[int, int], None] | None = None
) -> tuple[RefreshStats, dict[str, Any]]:
    universe = await runtime.universe.load()
    with runtime.open_cache() as cache:
        stats = await runtime.refresh_cache(cache, universe, stale_only=stale, on_progress=on_progress)
        return stats, cache.summary(runtime.cache_as_of)


def cache_refresh(
    mode: ModeOpt = None,
    as_of: RefreshAsOfOpt = None,
    stale: Annotated[
        bool,
        typer.Option(
            "--stale", help="Refresh only entries missing or older than the scan's target session", metavar=""
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Recompute the 20-day average volumes the scan's RVOL needs (`scan` refreshes stale entries by itself)."""
    from core.console import DownloadProgress

    settings = _settings(mode)
    runtime = _runtime(settings, as_date(as_of))
    progress = DownloadProgress("volume cache refresh")
    try:
        stats, summary = _run(_refresh(runtime, stale, progress))
    finally:
        progress.close()
    document = {**stats.as_dict(), "cache": summary}
    human = (
        f"volume cache refreshed through {stats.through}: {stats.written} written, {stats.incomplete} without a "
        f"complete 20-session window (removed), {stats.skipped_fresh} already fresh; "
        f"{stats.api_calls} API calls, {stats.elapsed_ms:.1f} ms -> {summary['path']} ({summary['entries']} entries)"
    )
    typer.echo(json.dumps(document) if as_json else human)


# ---- validate -----------------------------------------------------------------------------------------------------


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    from core.redact import redact

    # Details quote exception text (an unreachable broker's answer), printed on stdout: scrub it of the keys.
    return {"name": name, "status": "PASS" if ok else "FAIL", "detail": redact(detail)}


async def _check_market_data(runtime: ScanRuntime) -> dict[str, Any]:
    import numpy as np

    majors = list(runtime.major_symbols)
    snapshots = await runtime.market_data.get_snapshots(majors)
    missing = [s for s in majors if s not in snapshots]
    bad = [
        s
        for s, snap in snapshots.items()
        if not (np.isfinite(snap.price) and snap.price > 0 and np.isfinite(snap.volume) and snap.volume > 0)
    ]
    ok = not missing and not bad
    detail = f"{len(snapshots)}/{len(majors)} major symbols with positive price and volume"
    if missing:
        detail += f"; missing {missing}"
    if bad:
        detail += f"; non-positive or NaN price/volume for {bad}"
    return _check("market_data", ok, detail)


def _check_cache(summary: dict[str, Any], fix: str) -> dict[str, Any]:
    entries, fresh = summary["entries"], summary["fresh"]
    ok = entries > 0 and fresh >= FRESH_SHARE_REQUIRED * entries
    detail = (
        f"{entries} entries, {fresh} fresh (as_of {summary['expected']}), {summary['stale']} stale, "
        f"{summary['ahead']} ahead; need >= {FRESH_SHARE_REQUIRED:.0%} fresh"
    )
    return _check("volume_cache", ok, detail if ok else f"{detail} ({summary['path']}); fix: {fix}")


async def _check_rvol(runtime: ScanRuntime, symbols: list[str], fix: str) -> dict[str, Any]:
    import numpy as np

    with runtime.open_cache() as cache:
        cached = cache.lookup(symbols)
    rows = np.flatnonzero(cached.classify(runtime.cache_as_of)["fresh"])[:RVOL_SAMPLE]
    if not rows.size:
        return _check("rvol", False, f"no fresh cache entries to compute RVOL from; fix: {fix}")
    sample = [symbols[i] for i in rows]
    snapshots = await runtime.market_data.get_snapshots(sample)
    volume = np.array([snapshots[s].volume if s in snapshots else np.nan for s in sample])
    avg = cached.avg_volume[rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        rvol = volume / avg
    finite = rvol[np.isfinite(rvol)]
    in_range = bool(((finite > 0) & (finite <= 1000)).all())
    varied = finite.size > 1 and np.unique(np.round(finite, 6)).size > 1 and float(finite.std()) > 0
    ok = finite.size >= min(5, len(sample)) and in_range and varied
    detail = (
        f"{finite.size}/{len(sample)} real RVOL values"
        + (f", min {finite.min():.2f}, median {np.median(finite):.2f}, max {finite.max():.2f}" if finite.size else "")
        + ("" if in_range else "; values outside (0, 1000]")
        + ("" if varied else "; values are uniform (defaults?)")
    )
    return _check("rvol", ok, detail)


def _check_candidates(runtime: ScanRuntime, fix: str) -> dict[str, Any]:
    from core.candidates import CandidatesError, read_candidates, required_as_of

    path = runtime.settings.candidates_file
    try:
        document = read_candidates(path)
    except CandidatesError as error:
        return _check("candidates", False, f"{error}; fix: {fix}")
    now = runtime.clock.now()
    required, today = required_as_of(runtime.calendar, now), runtime.calendar.session_date(now)
    ok = required <= document.as_of <= today
    freshness = "fresh" if ok else ("stale" if document.as_of < required else f"dated after {today}")
    detail = (
        f"{path}: schema valid, as_of {document.as_of} ({freshness}; need {required}), "
        f"{len(document.candidates)} candidates + baseline {list(document.baseline)}"
    )
    return _check("candidates", ok, detail if ok else f"{detail}; fix: {fix}")


async def _validate(runtime: ScanRuntime, as_of: date | None) -> list[dict[str, Any]]:
    from agents.daily_scan import static_screen
    from tradingd.configs import scan_config

    # Validate reports, it does not repair: a validator that quietly refreshed the cache would hide a broken
    # refresh. Every FAIL it can point at a command for says which one.
    scan_cmd = f"run `tradingd scan{_as_of_flag(as_of)}`"
    cache_fix = f"{scan_cmd} (it refreshes the cache) or `tradingd cache refresh --stale{_as_of_flag(as_of)}`"
    config = scan_config(runtime.settings)
    checks = [_check("settings", True, f"mode {runtime.settings.mode.value}, scanning as of {runtime.as_of}")]
    try:
        checks.append(await _check_market_data(runtime))
    except Exception as error:  # unreachable data is a FAIL to report, not a crash
        checks.append(_check("market_data", False, f"unreachable: {error}"))
    with runtime.open_cache() as cache:
        checks.append(_check_cache(cache.summary(runtime.cache_as_of), cache_fix))
    try:
        universe = await runtime.universe.load()
        checks.append(await _check_rvol(runtime, static_screen(universe, config), cache_fix))
    except Exception as error:  # same: report it
        checks.append(_check("rvol", False, f"cannot compute: {error}"))
    checks.append(_check_candidates(runtime, scan_cmd))
    return checks


def validate(mode: ModeOpt = None, as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """Check the data path end to end; PASS/FAIL per check, exit 1 on any FAIL (2 on bad configuration)."""
    import asyncio

    from config.settings import ConfigError, load_settings
    from core.logging import configure_logging
    from tradingd.app import SetupError, check_setup
    from tradingd.scan_runtime import ScanSetupError, bundled_history, open_runtime

    try:
        settings = load_settings(**_mode_override(mode))
        configure_logging(settings.log_format, settings.log_level)
        # The same set-up checks as `run`: validate must not pass settings the daemon refuses to start with.
        check_setup(settings, load=bundled_history)
        runtime = open_runtime(settings, as_date(as_of))
    except (ConfigError, SetupError, ScanSetupError) as error:
        checks = [_check("settings", False, str(error))]
        typer.echo(json.dumps({"ok": False, "checks": checks}) if as_json else f"FAIL  settings  {error}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    checks = asyncio.run(_validate(runtime, as_date(as_of)))
    ok = all(c["status"] == "PASS" for c in checks)
    if as_json:
        typer.echo(
            json.dumps({"ok": ok, "mode": settings.mode.value, "as_of": runtime.as_of.isoformat(), "checks": checks})
        )
    else:
        typer.echo("\n".join(f"{c['status']:4}  {c['name']:12}  {c['detail']}" for c in checks))
    if not ok:
        raise typer.Exit(EXIT_FAILURE)


def register(app: typer.Typer) -> None:
    """Add `scan`, `validate` and the `cache` group (`cache refresh`) to the `tradingd` app."""
    app.command("scan")(scan)
    app.command("validate")(validate)
    cache_app = typer.Typer(no_args_is_help=True, help="The 20-day average volume cache behind RVOL.")
    cache_app.command("refresh")(cache_refresh)
    app.add_typer(cache_app, name="cache")
