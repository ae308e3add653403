"""``POST /v1/messages`` and ``POST /v1/gateway/ticket``."""

from __future__ import annotations

from quart import Blueprint, Response, request

from relay.api.http import bearer_token, json_response, read_body
from relay.services.registry import Services


def register(bp: Blueprint, services: Services) -> None:
    """Add the messaging routes to ``bp``."""

    @bp.post("/v1/messages")
    async def send_messages() -> Response:
        principal = services.sessions.authenticate(bearer_token(request))
        body = await read_body(request)
        encoded = await services.messaging.send(
            principal, request.headers.get("Idempotency-Key"), body
        )
        return Response(encoded, status=200, content_type="application/octet-stream")

    @bp.post("/v1/gateway/ticket")
    async def gateway_ticket() -> Response:
        principal = services.sessions.authenticate(bearer_token(request))
        ticket = await services.tickets.issue(principal)
        return json_response({"ticket": ticket}, status=201)
