"""``GET /v1/gateway?ticket=...``: the WebSocket handshake, as a bare ASGI handler.

It sits in front of Quart rather than being a Quart route: the handshake needs plain
HTTP answers before upgrading (400 without a ticket, 401 for a bad one), and the data
path skips a layer that would cost CPU on every frame. The session itself is
:class:`relay.gateway.session.Gateway`.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from relay.api.asgi import respond, websocket_reject
from relay.gateway.session import Gateway
from relay.services.tickets import TicketService
from storage.errors import StorageError

_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]


class AsgiConnection:
    """An accepted ASGI WebSocket as a :class:`relay.gateway.session.Connection`."""

    def __init__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        self._receive = receive
        self._send = send

    async def receive(self) -> bytes | str | None:
        """The next message, or None once the peer has gone."""
        while True:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                return None
            if message["type"] == "websocket.receive":
                data = message.get("bytes")
                if data is not None:
                    return bytes(data)
                text = message.get("text")
                # An empty binary frame arrives with neither field set.
                return b"" if text is None else text

    async def send(self, frame: bytes) -> None:
        """Send one binary message."""
        await self._send({"type": "websocket.send", "bytes": frame, "text": None})

    async def close(self, code: int, reason: str) -> None:
        """Send a close frame."""
        await self._send({"type": "websocket.close", "code": code, "reason": reason})


class GatewayEndpoint:
    """The ASGI application behind ``/v1/gateway``."""

    def __init__(self, tickets: TicketService, gateway: Gateway) -> None:
        self._tickets = tickets
        self._gateway = gateway

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "http":
            if scope["method"] not in ("GET", "HEAD"):
                await respond(send, 405, headers=[(b"allow", b"GET,HEAD")])
            else:
                text = b"Connection header did not include 'upgrade'"
                await respond(send, 400, text, _TEXT)
            return
        if scope["type"] != "websocket":
            return
        tickets = parse_qs(scope["query_string"].decode("latin-1")).get("ticket")
        if not tickets:
            text = b"Failed to deserialize query string: missing field `ticket`"
            await websocket_reject(send, 400, text, _TEXT)
            return
        try:
            device_id = await self._tickets.redeem(tickets[0])
        except StorageError:
            device_id = None
        if device_id is None:
            await websocket_reject(send, 401)
            return
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
        await self._gateway.serve(device_id, AsgiConnection(receive, send))
