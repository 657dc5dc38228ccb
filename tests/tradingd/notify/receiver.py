"""A loopback HTTP receiver for apprise's `json://` scheme: every POST body is kept, parsed.

`receiver()` runs it in a thread of the test's process; `receiver_process()` in a process of its own (the benchmark:
a receiver is remote in real use, and one in the daemon's process would compete with it for the GIL), answering
`GET /count` with how many messages it took.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WAIT_SECONDS = 60.0  # generous: the sender thread shares two cores with the test and other work


class Receiver:
    def __init__(self, server: ThreadingHTTPServer, status: list[int]) -> None:
        self._server = server
        self._status = status  # what to answer (a test may make the channel fail)
        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"json://{host}:{port}/hook"

    def answer(self, status: int) -> None:
        self._status[0] = status

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.messages)

    def wait_for(self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = WAIT_SECONDS) -> bool:
        """Poll (every 0.2 s, for up to `timeout`) until `done(messages)`; a condition, never a duration asserted."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done(self.snapshot()):
                return True
            time.sleep(0.2)
        return done(self.snapshot())


@contextmanager
def receiver() -> Iterator[Receiver]:
    status = [200]
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with holder[0].lock:
                body = json.dumps({"count": len(holder[0].messages)}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            code = status[0]
            if code == 200:
                with holder[0].lock:
                    holder[0].messages.append(json.loads(body))
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:  # quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Receiver(server, status))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()


class ReceiverProcess:
    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def count(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/count", timeout=30) as response:
            return int(json.loads(response.read())["count"])


@contextmanager
def receiver_process() -> Iterator[ReceiverProcess]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.tradingd.notify.receiver"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield ReceiverProcess(process, int(process.stdout.readline()))
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    """Serve until terminated; the first line on stdout is the port."""
    with receiver() as hook:
        print(hook.url.rsplit(":", 1)[1].split("/")[0], flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
