"""``GET /v1/gateway?ticket=...``: the WebSocket handshake, on the API port.

A connection whose first request is a WebSocket upgrade of ``/v1/gateway`` never reaches
the HTTP paths: :class:`GatewayInterceptor` takes it from the accept loop
(:mod:`relay.transport.listener`) and runs it on
:class:`~relay.transport.websocket.ServerWebSocket`, which gives the session real pings,
liveness and a connection it can always cut.
The handshake answers as the reference does, before upgrading: 429 from the rate limit,
400 without a ticket, an empty 401 for a bad one; every answer carries ``x-request-id``.

Requests for ``/v1/gateway`` that the HTTP paths do see get plain HTTP answers from
:class:`GatewayHttpEndpoint`: 400 for a GET that is not an upgrade, 405 for other
methods, and 400 for an upgrade that is not the first request of its connection: the
gateway needs a connection of its own.
"""

from __future__ import annotations

import logging
import time
import uuid
from urllib.parse import parse_qs

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope
from wsproto.events import Request

from relay.api.asgi import is_websocket_upgrade, respond
from relay.api.cors import origin_of
from relay.api.edge import AnsweredRequest, EdgePolicy, request_id_of, too_many_requests
from relay.api.outages import unavailable_raw
from relay.api.routes import TABLE, Served
from relay.gateway.session import Gateway
from relay.observability import metrics
from relay.observability.requests import REQUEST_ID
from relay.services.tickets import TicketService
from relay.transport.http1 import RequestHead
from relay.transport.listener import PeekedStream
from relay.transport.types import Address, Headers
from relay.transport.websocket import ServerWebSocket
from storage.errors import StorageError, StorageUnavailable

log = logging.getLogger("relay.gateway")

_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
_MISSING_TICKET = b"Failed to deserialize query string: missing field `ticket`"
_NOT_AN_UPGRADE = b"Connection header did not include 'upgrade'"
_NOT_ALONE = b"The gateway needs a new HTTP/1.1 connection of its own"
# Clients only send acknowledgements; 16 MiB is what hypercorn allowed as well.
_MAX_INBOUND_MESSAGE = 16 * 1024 * 1024
GATEWAY_ROUTE = "/v1/gateway"


class GatewayInterceptor:
    """Takes gateway connections from the accept loop, handshake first."""

    def __init__(self, tickets: TicketService, gateway: Gateway, edge: EdgePolicy) -> None:
        self._tickets = tickets
        self._gateway = gateway
        self._edge = edge

    def wants(self, head: RequestHead) -> bool:
        """The WebSocket upgrades of the route table's ``UPGRADE`` routes."""
        route = TABLE.match(head.path)
        return (
            route is not None
            and route.served is Served.UPGRADE
            and is_websocket_upgrade(head.method, head.headers)
        )

    async def serve(self, stream: PeekedStream, peer: Address | None) -> None:
        """Handshake, then the session (the accept loop closes the connection). The
        upgrade is one request of the access log and the metrics; lines logged during
        the session carry its request id."""
        arrived = time.perf_counter()
        websocket = ServerWebSocket(stream, max_message_bytes=_MAX_INBOUND_MESSAGE)
        request = await websocket.handshake()
        if request is None:
            return
        headers = list(request.extra_headers)
        request_id = request_id_of(headers)
        serving = REQUEST_ID.set(request_id.decode("latin-1"))
        answered = AnsweredRequest("GET", GATEWAY_ROUTE, arrived, self._edge.access_log)
        try:
            device_id = await self._admit(websocket, request, headers, request_id, peer, answered)
            if device_id is None:
                return
            await websocket.accept([(b"x-request-id", request_id)])
            answered.status = 101
            answered.record()
            await self._gateway.serve(device_id, websocket)
        finally:
            REQUEST_ID.reset(serving)

    async def _admit(
        self,
        websocket: ServerWebSocket,
        request: Request,
        headers: Headers,
        request_id: bytes,
        peer: Address | None,
        answered: AnsweredRequest,
    ) -> uuid.UUID | None:
        """The device whose ticket the upgrade carries, or None once refused."""
        tagged = [(b"x-request-id", request_id)]

        async def reject(status: int, extra: Headers, body: bytes) -> None:
            await websocket.reject(status, extra, body)
            answered.status, answered.bytes = status, len(body)
            answered.record()

        if not self._edge.cors.upgrade_allowed(origin_of(headers)):
            await reject(403, [*_TEXT, *tagged], b"Origin not allowed")
            return None
        host = None if peer is None else peer[0]
        path, _, query = request.target.partition("?")
        tier = self._edge.classify(path).tier
        wait = await self._edge.admit_request(tier, host, headers, trio.current_time())
        if wait is not None:
            assert tier is not None
            metrics.RATE_LIMITED.labels(tier.value).inc()
            body, limit_headers = too_many_requests(wait, request_id)
            await reject(429, limit_headers, body)
            return None
        tickets = parse_qs(query).get("ticket")
        if not tickets:
            await reject(400, [*_TEXT, *tagged], _MISSING_TICKET)
            return None
        try:
            device_id = await self._tickets.redeem(tickets[0])
        except StorageUnavailable as error:
            await reject(503, [*tagged, *unavailable_raw(error)], b"")
            return None
        except StorageError as error:
            log.warning("gateway ticket check failed: %s", error)
            device_id = None
        if device_id is None:
            await reject(401, tagged, b"")
        return device_id


class GatewayHttpEndpoint:
    """What the HTTP paths answer for ``/v1/gateway`` (see the module docstring)."""

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            await respond(send, 405, headers=[(b"allow", b"GET,HEAD")])
        elif is_websocket_upgrade(scope["method"], scope["headers"]):
            await respond(send, 400, _NOT_ALONE, _TEXT)
        else:
            await respond(send, 400, _NOT_AN_UPGRADE, _TEXT)
