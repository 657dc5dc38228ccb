"""candidates.json: the daily scan's output and the daemon's focus list (schema: docs/ARCHITECTURE.md §File formats).

Written atomically (temp file in the same directory → fsync → rename → fsync the directory), so a reader sees the
old file or the new one, never half of one. Read defensively: `load_focus_symbols` never raises; a missing, corrupt,
invalid, stale or future-dated file falls back to the configured symbols with a warning, and a valid file feeds the
daemon only symbols it holds.

    {"schema": 1, "generated_at": ISO-8601 UTC, "as_of": "YYYY-MM-DD", "symbols": [...], "baseline": [...],
     "candidates": [{"symbol", "score", "zscore", "rvol", "price", "reason", ...}], "stats": {...}}

`candidates` are in rank order (best first); `symbols` = those candidates followed by the baseline symbols.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from core.clock import NyseCalendar
from core.fsync import fsync_directory

SCHEMA_VERSION: Final = 1
CANDIDATE_FIELDS: Final = ("symbol", "score", "zscore", "rvol", "price", "reason")
_NUMBER_FIELDS: Final = ("score", "zscore", "rvol", "price")
_POSITIVE_FIELDS: Final = ("rvol", "price")
# A real scan writes at most PRERANK_KEEP (1000 by default) candidates, ~300 bytes each: 5 MB is ample headroom, and
# anything bigger is not a scan's output (reading and validating it would only stall the daemon).
MAX_FILE_BYTES: Final = 5 * 1024 * 1024

SOURCE_CANDIDATES: Final = "candidates"
SOURCE_FALLBACK: Final = "fallback"


class CandidatesError(Exception):
    """The candidates file is missing, unreadable, not JSON, or does not match the schema."""


@dataclass(frozen=True, slots=True)
class CandidatesFile:
    generated_at: datetime
    as_of: date
    symbols: tuple[str, ...]
    baseline: tuple[str, ...]
    candidates: tuple[Mapping[str, Any], ...]
    stats: Mapping[str, Any]


# ---- validation ---------------------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _symbol_list(payload: Mapping[str, Any], key: str, errors: list[str]) -> list[str]:
    value = payload.get(key)
    if not isinstance(value, list) or not all(isinstance(s, str) and s.strip() for s in value):
        errors.append(f"{key}: must be a list of non-empty strings")
        return []
    if len(set(value)) != len(value):
        errors.append(f"{key}: duplicate symbols")
    return value


def _check_candidate(index: int, item: Any, errors: list[str]) -> str | None:
    where = f"candidates[{index}]"
    if not isinstance(item, dict):
        errors.append(f"{where}: must be an object")
        return None
    missing = [name for name in CANDIDATE_FIELDS if name not in item]
    if missing:
        errors.append(f"{where}: missing {', '.join(missing)}")
        return None
    symbol = item["symbol"]
    if not isinstance(symbol, str) or not symbol.strip():
        errors.append(f"{where}.symbol: must be a non-empty string")
        symbol = None
    for name in _NUMBER_FIELDS:
        if not _is_number(item[name]):
            errors.append(f"{where}.{name}: must be a finite number, got {item[name]!r}")
        elif name in _POSITIVE_FIELDS and item[name] <= 0:
            errors.append(f"{where}.{name}: must be positive, got {item[name]!r}")
    if not isinstance(item["reason"], str) or not item["reason"].strip():
        errors.append(f"{where}.reason: must be a non-empty string")
    return str(symbol) if symbol is not None else None


def validate_candidates(payload: Any) -> list[str]:
    """Every way `payload` departs from the schema (empty list = valid)."""
    if not isinstance(payload, dict):
        return ["document: must be a JSON object"]
    errors: list[str] = []
    schema = payload.get("schema")
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        errors.append(f"schema: must be {SCHEMA_VERSION}, got {schema!r}")
    generated = payload.get("generated_at")
    try:
        stamp = datetime.fromisoformat(generated) if isinstance(generated, str) else None
        if stamp is None or stamp.utcoffset() != timedelta(0):
            errors.append(f"generated_at: must be an ISO-8601 UTC timestamp, got {generated!r}")
    except ValueError:
        errors.append(f"generated_at: not ISO-8601: {generated!r}")
    as_of = payload.get("as_of")
    try:
        if not isinstance(as_of, str) or len(as_of) != 10:
            raise ValueError
        date.fromisoformat(as_of)
    except ValueError:
        errors.append(f"as_of: must be a YYYY-MM-DD date, got {as_of!r}")
    symbols = _symbol_list(payload, "symbols", errors)
    baseline = _symbol_list(payload, "baseline", errors)
    items = payload.get("candidates")
    candidate_symbols: list[str] = []
    if not isinstance(items, list):
        errors.append("candidates: must be a list")
    else:
        for index, item in enumerate(items):
            symbol = _check_candidate(index, item, errors)
            if symbol is not None:
                candidate_symbols.append(symbol)
        if len(set(candidate_symbols)) != len(candidate_symbols):
            errors.append("candidates: duplicate symbols")
    if not isinstance(payload.get("stats"), dict):
        errors.append("stats: must be an object")
    # Each membership test is against a set built once: O(n) overall (a set rebuilt per symbol made 100k candidates
    # take minutes).
    listed = set(symbols)
    if symbols:
        held = set(candidate_symbols) | set(baseline)
        extra = [s for s in symbols if s not in held]
        if extra:
            errors.append(f"symbols: {_some(extra)} are neither candidates nor baseline")
    not_listed = [s for s in [*candidate_symbols, *baseline] if s not in listed]
    if not_listed:
        errors.append(f"symbols: missing {_some(not_listed)}")
    return errors


def _some(names: list[str], shown: int = 10) -> str:
    # A broken 100k-symbol file must not make a 100k-symbol warning line.
    if len(names) <= shown:
        return str(names)
    return f"{names[:shown]} and {len(names) - shown} more"


def parse_candidates(payload: Any) -> CandidatesFile:
    errors = validate_candidates(payload)
    if errors:
        raise CandidatesError("; ".join(errors))
    return CandidatesFile(
        generated_at=datetime.fromisoformat(payload["generated_at"]),
        as_of=date.fromisoformat(payload["as_of"]),
        symbols=tuple(payload["symbols"]),
        baseline=tuple(payload["baseline"]),
        candidates=tuple(payload["candidates"]),
        stats=payload["stats"],
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON data")


def _read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of `path` if it is a regular file of at most `limit` bytes, else CandidatesError.

    The type is checked with stat *before* any open: opening a FIFO for reading blocks until a writer appears, which
    would hang the daemon's focus reload. The open itself is non-blocking and the descriptor is checked again, so a
    FIFO swapped in between the two still cannot block; reading at most limit + 1 bytes bounds memory whatever the
    file grows to meanwhile.
    """
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise CandidatesError(f"{path} is not a regular file")
    if info.st_size > limit:
        raise CandidatesError(f"{path} is too large ({info.st_size} bytes, limit {limit})")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise CandidatesError(f"{path} is not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise CandidatesError(f"{path} is too large (over {limit} bytes)")
    return data


def read_candidates(path: Path, max_bytes: int = MAX_FILE_BYTES) -> CandidatesFile:
    try:
        text = _read_regular_file(path, max_bytes).decode("utf-8")
    except FileNotFoundError:
        raise CandidatesError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CandidatesError(f"{path} is unreadable: {error}") from None
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:
        raise CandidatesError(f"{path} is not valid JSON: {error}") from None
    return parse_candidates(payload)


class CandidatesFileReader:
    """The candidates file, parsed again only when it changed (the notifier's digest asks every replayed session;
    `core/universe.py::FileUniverse` and `core/state_guard.py::KillSwitchFile` cache their files the same way)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._seen: tuple[int, int, int] | None = None
        self._document: CandidatesFile | None = None

    def read(self) -> CandidatesFile | None:
        try:
            info = self._path.stat()
        except OSError:
            return None
        seen = (info.st_ino, info.st_mtime_ns, info.st_size)
        if seen != self._seen:
            try:
                self._document = read_candidates(self._path)
            except CandidatesError:
                self._document = None
            self._seen = seen
        return self._document


# ---- writing ------------------------------------------------------------------------------------------------------


def write_candidates(path: Path, payload: Mapping[str, Any], *, durable: bool = True) -> None:
    """Validate, then replace `path` atomically. On any failure the previous file is left as it was.

    `durable=False` (a sim replay's own file, deleted when the next replay starts) skips the two fsyncs: readers still
    see the old file or the new one, never half of one; only survival of a power loss is given up.
    """
    errors = validate_candidates(dict(payload))
    if errors:
        raise CandidatesError("refusing to write an invalid candidates file: " + "; ".join(errors))
    text = json.dumps(payload, indent=2, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_directory(path.parent)


# ---- reading for the daemon ---------------------------------------------------------------------------------------


def required_as_of(calendar: NyseCalendar, now: datetime) -> date:
    """The newest session whose scan time (close + 5 min) has passed: a file older than this is stale."""
    session = calendar.last_completed_session(now)
    if now < calendar.scan_time(session):
        session = calendar.previous_session(session)
    return session


def load_focus_symbols(
    path: Path,
    calendar: NyseCalendar,
    now: datetime,
    fallback: Sequence[str],
    baseline: Sequence[str],
    top_n: int,
    *,
    document: CandidatesFile | None = None,
) -> tuple[tuple[str, ...], str, str | None]:
    """(symbols, source, warning): the file's top `top_n` candidates + its baseline, or `fallback` with a warning.

    Never raises. `source` is "candidates" or "fallback". A valid, fresh file whose baseline lacks some of the
    configured `baseline` symbols is still used (the daemon only watches what the file holds), with a warning.
    `document`: the file's content already in hand (a sim replay's own scan, parsed and validated): not read again,
    judged the same way.
    """
    fallen_back = tuple(fallback)
    try:
        if document is None:
            document = read_candidates(path)
        required = required_as_of(calendar, now)
        today = calendar.session_date(now)
    except CandidatesError as error:
        return fallen_back, SOURCE_FALLBACK, f"candidates file unusable ({error}); using SYMBOLS"
    except ValueError as error:  # `now` outside the exchange calendar
        return fallen_back, SOURCE_FALLBACK, f"cannot judge candidates freshness ({error}); using SYMBOLS"
    except (OverflowError, RecursionError, MemoryError, TypeError) as error:
        # Hostile or absurd JSON (a 400-digit score, nesting 200k deep): still just an unusable file.
        return fallen_back, SOURCE_FALLBACK, f"candidates file unusable ({type(error).__name__}); using SYMBOLS"
    if document.as_of < required:
        return (
            fallen_back,
            SOURCE_FALLBACK,
            f"candidates file {path} is stale (as_of {document.as_of}, need {required} or later); using SYMBOLS",
        )
    if document.as_of > today:
        return (
            fallen_back,
            SOURCE_FALLBACK,
            f"candidates file {path} is dated {document.as_of}, after {today}; using SYMBOLS",
        )
    picked = [str(item["symbol"]) for item in document.candidates[: max(top_n, 0)]]
    symbols = tuple(dict.fromkeys([*picked, *document.baseline]))
    missing_baseline = [s for s in baseline if s not in document.baseline]
    warning = None
    if missing_baseline:
        warning = f"candidates file baseline {list(document.baseline)} lacks {missing_baseline}; rerun the scan"
    return symbols, SOURCE_CANDIDATES, warning
