"""``POST /v1/messages`` and ``POST /v1/gateway/ticket``.

``POST /v1/messages`` is the hottest route of the relay, so it is a plain ASGI handler
(:class:`MessagesEndpoint`, routed by :class:`relay.app.ApiRouter`) rather than a Quart
route: Quart's request and response objects and its contexts cost more CPU than the whole
send does (``relay bench rest``). Its answers are the same: the same status codes, error
bodies and 413 for a body over the limit.
"""

from __future__ import annotations

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope
from quart import Blueprint, Response, request

from relay.api.asgi import OCTET_STREAM, StreamingRequest, method_not_allowed, run_endpoint
from relay.api.http import JSON_BODY_LIMIT, bearer_token, bearer_token_of, json_response
from relay.api.routes import view
from relay.services.messaging import MessagingService
from relay.services.sessions import SessionService
from relay.services.tickets import TicketService

MESSAGES_PATH = "/v1/messages"


class MessagesEndpoint:
    """The ASGI handler of ``POST /v1/messages``."""

    def __init__(self, sessions: SessionService, messaging: MessagingService) -> None:
        self._sessions = sessions
        self._messaging = messaging

    async def __call__(
        self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        await run_endpoint(self._handle, scope, receive, send)

    async def _handle(self, request: StreamingRequest) -> None:
        if request.method != "POST":
            await method_not_allowed(request, b"POST")
            return
        principal = self._sessions.authenticate(bearer_token_of(request.header(b"authorization")))
        body = await request.whole_body(JSON_BODY_LIMIT)
        encoded = await self._messaging.send(principal, request.header(b"idempotency-key"), body)
        await request.complete(200, encoded, [OCTET_STREAM])


def register(bp: Blueprint, sessions: SessionService, tickets: TicketService) -> None:
    """Add the Quart-served messaging route to ``bp``."""

    @view(bp)
    async def gateway_ticket() -> Response:
        principal = sessions.authenticate(bearer_token(request))
        ticket = await tickets.issue(principal)
        return json_response({"ticket": ticket}, status=201)
