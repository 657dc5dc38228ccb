"""The Host header check against DNS rebinding: a foreign page whose name resolves to 127.0.0.1 must not read the
loopback dashboard (reads on loopback need no token). Starlette's `TrustedHostMiddleware` answers 400 to any other
Host; the port is ignored.

Allowed: 127.0.0.1, localhost, [::1] and DASHBOARD_HOST itself. A wildcard bind (0.0.0.0, ::) is reached by any of
the machine's names, so it allows any Host: beyond loopback every request needs the token, which a rebinding page
does not have.
"""

from __future__ import annotations

import ipaddress
from typing import Final

LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost", "[::1]")
ANY_HOST: Final = "*"


def _as_host_header(host: str) -> str:
    """How a client writes `host` in its Host header (an IPv6 literal in brackets)."""
    bare = host.strip().strip("[]").lower()
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return bare
    return f"[{address.compressed}]" if address.version == 6 else address.compressed


def allowed_hosts(dashboard_host: str) -> list[str]:
    """The Host names the dashboard answers to (TrustedHostMiddleware's `allowed_hosts`)."""
    configured = _as_host_header(dashboard_host)
    if configured in ("", "0.0.0.0", "[::]"):  # noqa: S104 - recognising the wildcard bind, not binding it
        return [ANY_HOST]
    return list(dict.fromkeys([*LOOPBACK_NAMES, configured]))
