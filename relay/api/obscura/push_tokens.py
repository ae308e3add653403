"""``PUT /v1/push-tokens``."""

from __future__ import annotations

from quart import Blueprint, Response, request

from relay.api.http import bearer_token, empty_response, read_json
from relay.api.obscura.schemas import PushTokenRequest
from relay.api.routes import view
from relay.services.push_tokens import PushTokenService
from relay.services.sessions import SessionService


def register(bp: Blueprint, sessions: SessionService, push_tokens: PushTokenService) -> None:
    """Add the push-token route to ``bp``."""

    @view(bp)
    async def put_push_token() -> Response:
        principal = sessions.authenticate(bearer_token(request))
        body = await read_json(request, PushTokenRequest)
        await push_tokens.put(
            principal,
            body.token,
            platform=body.platform,
            environment=body.environment,
            push_key=body.push_key,
        )
        return empty_response()
