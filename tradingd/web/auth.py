"""The bearer token check (README "Dashboard and API", Security): 401 without a token, 403 with a wrong one.

Mutating endpoints always need it; reads need it when the server is bound beyond loopback. The comparison is
`hmac.compare_digest` (its time does not tell how much of a guess was right).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import HTTPException, Request, status

from tradingd.web.token import DashboardAccess

BEARER = "bearer"


def presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == BEARER and value.strip() else None


def check_token(access: DashboardAccess, request: Request) -> None:
    token = presented_token(request)
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="a bearer token is required (Authorization: Bearer <DASHBOARD_TOKEN>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(token.encode(), access.token.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="the bearer token is not this dashboard's")


def write_guard(access: DashboardAccess) -> Callable[[Request], None]:
    """The dependency of every mutating endpoint."""

    def guard(request: Request) -> None:
        check_token(access, request)

    return guard


def read_guard(access: DashboardAccess) -> Callable[[Request], None]:
    """The dependency of every read: a no-op on loopback, the token beyond it."""

    def guard(request: Request) -> None:
        if access.reads_need_token:
            check_token(access, request)

    return guard
