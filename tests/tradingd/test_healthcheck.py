"""The container health check (`python -m tradingd.healthcheck`) against a stand-in for the API on a loopback port:
healthy on 200, unhealthy with one line naming the URL and the reason otherwise; the token is sent when set."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tradingd.healthcheck import check

TOKEN = "s3cret-token"


class _Health(BaseHTTPRequestHandler):
    status = 200
    seen_auth: list[str | None] = []  # noqa: RUF012 - one class per server fixture, reset there

    def do_GET(self) -> None:
        type(self).seen_auth.append(self.headers.get("Authorization"))
        code = type(self).status if self.path == "/api/health" else 404
        body = b'{"alive": true}'
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[tuple[int, type[_Health]]]:
    handler = type("Health", (_Health,), {"status": 200, "seen_auth": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_healthy_on_200_and_the_token_is_sent(server: tuple[int, type[_Health]]) -> None:
    port, handler = server
    assert check({"DASHBOARD_PORT": str(port), "DASHBOARD_TOKEN": TOKEN}) is None
    assert handler.seen_auth == [f"Bearer {TOKEN}"]
    assert check({"DASHBOARD_PORT": str(port)}) is None
    assert handler.seen_auth[-1] is None  # no token set: none sent


@pytest.mark.parametrize("status", [401, 503])
def test_unhealthy_on_an_error_status(server: tuple[int, type[_Health]], status: int) -> None:
    port, handler = server
    handler.status = status
    assert check({"DASHBOARD_PORT": str(port)}) == f"http://127.0.0.1:{port}/api/health: HTTP {status}"


def test_unhealthy_when_nothing_listens() -> None:
    port = _free_port()
    reason = check({"DASHBOARD_PORT": str(port)})
    assert reason is not None
    assert reason.startswith(f"http://127.0.0.1:{port}/api/health: ")


def test_the_module_exits_0_or_1_with_one_line(server: tuple[int, type[_Health]]) -> None:
    port, _ = server
    env = {**os.environ, "DASHBOARD_PORT": str(port), "DASHBOARD_TOKEN": TOKEN}
    ok = subprocess.run(
        [sys.executable, "-m", "tradingd.healthcheck"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    env["DASHBOARD_PORT"] = str(_free_port())
    down = subprocess.run(
        [sys.executable, "-m", "tradingd.healthcheck"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert down.returncode == 1
    assert len(down.stderr.splitlines()) == 1
    assert down.stderr.startswith("unhealthy: http://127.0.0.1:")
    assert TOKEN not in down.stderr
