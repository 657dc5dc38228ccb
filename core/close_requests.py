"""Close requests: the positions `tradingd close` or a breaker's flatten asked the daemon to sell, kept as flags.

One flag per target (`close_request:<SYMBOL>`, or `close_request:*` for every owned position), its value a small
JSON object: the exit tag (`manual` or `flatten`, which labels the exit orders), the reason, the request time, the
breaker of a flatten, and why the exit was last refused. They live in the state DB so a request survives a restart
and another process (the CLI) can add one while the daemon runs; each process writes only its own request's row.
`agents/exit_requests.py` turns them into exit signals and clears each one once its exit orders are placed or the
positions are gone.

The request time is the exit signal's bar time, so the request fixes its orders' client order ids: a crash and a
retry give the same id, which the store and the broker refuse to place twice. That is why asking again for a target
that is already requested keeps the existing request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog

from core.flags import CLOSE_REQUEST_PREFIX, FlagStore
from core.order_ids import client_order_id
from core.types import OrderSide

log = structlog.get_logger(__name__)

ALL = "*"  # every position the daemon owns when the request is carried out


@dataclass(frozen=True, slots=True)
class CloseRequest:
    target: str  # a symbol, or ALL
    tag: str  # MANUAL_EXIT_TAG or FLATTEN_EXIT_TAG: the exit orders' strategy
    reason: str  # the exit signals' reason
    requested_at: datetime  # the exit signals' bar time
    breaker: str = ""  # a flatten's breaker (`core/reasons.py::Breaker`); empty for a manual close
    refused: str = ""  # why its exit was last refused (risk's reason and detail), for `close` and `status`

    @property
    def flag(self) -> str:
        return CLOSE_REQUEST_PREFIX + self.target

    def covers(self, symbol: str) -> bool:
        return self.target in (ALL, symbol)

    def order_id(self, symbol: str) -> str:
        """The client order id of this request's exit of `symbol` (what risk computes from its signal)."""
        return client_order_id(self.tag, symbol, OrderSide.SELL, self.requested_at)

    def as_json(self) -> dict[str, str]:
        return {
            "target": self.target,
            "tag": self.tag,
            "reason": self.reason,
            "requested_at": self.requested_at.isoformat(),
            "breaker": self.breaker,
            "refused": self.refused,
        }

    @classmethod
    def parse(cls, target: str, text: str) -> CloseRequest | None:
        """The request stored under `target`, or None when its value is not one (logged)."""
        try:
            raw: Any = json.loads(text)
            requested_at = datetime.fromisoformat(raw["requested_at"])
            if requested_at.tzinfo is None:
                raise ValueError("requested_at has no time zone")
            return cls(
                target=target,
                tag=str(raw["tag"]),
                reason=str(raw["reason"]),
                requested_at=requested_at,
                breaker=str(raw.get("breaker", "")),
                refused=str(raw.get("refused", "")),
            )
        except (ValueError, KeyError, TypeError) as error:
            log.warning("close_request_unreadable", target=target, error=str(error))
            return None


class CloseRequests:
    """The close requests in a `FlagStore` (the state DB's flags)."""

    def __init__(self, flags: FlagStore) -> None:
        self._flags = flags

    def pending(self) -> list[CloseRequest]:
        """Every readable request: those for one symbol first (by name), then the one for all."""
        found = []
        for name, value in self._flags.flags_with_prefix(CLOSE_REQUEST_PREFIX).items():
            request = CloseRequest.parse(name.removeprefix(CLOSE_REQUEST_PREFIX), value)
            if request is not None:
                found.append(request)
        return sorted(found, key=lambda r: (r.target == ALL, r.target))

    def get(self, target: str) -> CloseRequest | None:
        value = self._flags.get_flag(CLOSE_REQUEST_PREFIX + target)
        return None if value is None else CloseRequest.parse(target, value)

    def request(
        self, target: str, *, tag: str, reason: str, now: datetime, breaker: str = ""
    ) -> tuple[CloseRequest, bool]:
        """Ask for `target` to be closed; returns the request in force and whether it is new (an existing one is
        kept: its time fixes its orders' ids)."""
        existing = self.get(target)
        if existing is not None:
            return existing, False
        request = CloseRequest(target=target, tag=tag, reason=reason, requested_at=now, breaker=breaker)
        self._write(request)
        log.info("close_requested", target=target, tag=tag, reason=reason, requested_at=now.isoformat())
        return request, True

    def clear(self, request: CloseRequest) -> None:
        self._flags.clear_flag(request.flag)

    def note_refused(self, request: CloseRequest, why: str) -> None:
        if request.refused != why:  # written once per new reason, not at every iteration it still holds
            self._write(replace(request, refused=why))

    def withdraw_flatten(self, breaker: str) -> list[CloseRequest]:
        """The breaker no longer holds: its flatten requests go with it (returned)."""
        withdrawn = [r for r in self.pending() if r.breaker == breaker]
        for request in withdrawn:
            self.clear(request)
            log.warning("flatten_withdrawn", target=request.target, breaker=breaker)
        return withdrawn

    def _write(self, request: CloseRequest) -> None:
        self._flags.set_flag(request.flag, json.dumps(request.as_json()))
