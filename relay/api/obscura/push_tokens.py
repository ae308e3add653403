"""``PUT /v1/push-tokens``."""

from __future__ import annotations

from quart import Blueprint, Response, request

from relay.api.http import bearer_token, empty_response, read_json
from relay.api.obscura.schemas import PushTokenRequest
from relay.api.routes import view
from relay.services.registry import Services


def register(bp: Blueprint, services: Services) -> None:
    """Add the push-token route to ``bp``."""

    @view(bp)
    async def put_push_token() -> Response:
        principal = services.sessions.authenticate(bearer_token(request))
        body = await read_json(request, PushTokenRequest)
        await services.push_tokens.put(
            principal,
            body.token,
            platform=body.platform,
            environment=body.environment,
            push_key=body.push_key,
        )
        return empty_response()
