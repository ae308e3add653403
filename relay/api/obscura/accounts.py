"""Registration and sessions: ``/v1/users`` (POST) and ``/v1/sessions``."""

from __future__ import annotations

from quart import Blueprint, Response, request

from relay.api.http import bearer_token, empty_response, json_response, read_json
from relay.api.obscura.responses import auth_response
from relay.api.obscura.schemas import Credentials, LoginRequest, RefreshTokenRequest
from relay.api.routes import view
from relay.services.sessions import SessionService


def register(bp: Blueprint, sessions: SessionService) -> None:
    """Add the account and session routes to ``bp``."""

    @view(bp)
    async def register_user() -> Response:
        body = await read_json(request, Credentials)
        session = await sessions.register(body.username, body.password)
        return json_response(auth_response(session), status=201)

    @view(bp)
    async def login() -> Response:
        body = await read_json(request, LoginRequest)
        session = await sessions.login(body.username, body.password, body.device_id)
        return json_response(auth_response(session))

    @view(bp)
    async def logout() -> Response:
        principal = sessions.authenticate(bearer_token(request))
        body = await read_json(request, RefreshTokenRequest)
        await sessions.logout(principal, body.refresh_token)
        return empty_response()

    @view(bp)
    async def refresh() -> Response:
        body = await read_json(request, RefreshTokenRequest)
        session = await sessions.refresh(body.refresh_token)
        return json_response(auth_response(session))
