"""The last net under "no response ever contains a secret": every JSON body leaves through `core/redact.py`.

The endpoints build their bodies from the state DB, whose free text (a halt reason, a broker's words in an order's
reason) was written by other processes; masking the finished body catches whatever a field-by-field redaction would
miss. Streams (SSE) pass through: the live feed masks its details when it formats them. Bodies are small JSON.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.redact import redact

_JSON = b"application/json"


class RedactJson:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def masked(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers") or []).get(b"content-type", b"")
                if not content_type.startswith(_JSON):
                    await send(message)
                    return
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = redact(b"".join(chunks).decode()).encode()
            headers = [(k, v) for k, v in start.get("headers") or [] if k != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self._app(scope, receive, masked)
