"""The management port: ``GET /livez``, ``GET /readyz`` and ``GET /metrics``
(Prometheus), as a bare ASGI app.

No auth, no rate limit, no request ids: it is meant for orchestrators on a private
port, and it must keep answering when the API side is saturated.
"""

from __future__ import annotations

import json

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from relay.api.asgi import respond
from relay.observability.exposition import render
from relay.services.health import HealthService


class ManagementApp:
    """ASGI app serving the health endpoints."""

    def __init__(self, health: HealthService) -> None:
        self._health = health

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path not in ("/livez", "/readyz", "/metrics"):
            await respond(send, 404, b"")
        elif method not in ("GET", "HEAD"):
            await respond(send, 405, b"", [(b"allow", b"GET,HEAD")])
        elif path == "/livez":
            await respond(send, 200, b"")
        elif path == "/metrics":
            body, content_type = render()
            await respond(send, 200, body, [(b"content-type", content_type.encode())])
        else:
            report = await self._health.readiness()
            status = 200 if report["status"] == "ok" else 503
            body = json.dumps(report).encode()
            await respond(send, status, body, [(b"content-type", b"application/json")])

    @staticmethod
    async def _lifespan(receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
