"""The Rocket.Chat routes: ``POST /api/v1/login``, ``POST`` and ``DELETE
/api/v1/push.token``, ``GET /api/v1/push.info``."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, request

from relay.api.http import json_response
from relay.api.rocketchat import schemas
from relay.api.routes import view
from relay.services.rocketchat import KINDS, NotLoggedIn, RocketChatService, UserRecord
from storage.ids import format_rfc3339

_KIND_OF = {platform: kind for kind, platform in KINDS.items()}


def register(bp: Blueprint, rocket: RocketChatService) -> None:
    """Add the routes to ``bp``."""

    async def caller() -> UserRecord:
        return await rocket.authenticate(
            request.headers.get("X-Auth-Token"), request.headers.get("X-User-Id")
        )

    @view(bp)
    async def login() -> Response:
        credentials = schemas.credentials(await schemas.json_body(request))
        if credentials is None:
            raise NotLoggedIn("Unauthorized")
        done = await rocket.login(credentials)
        user = done.user
        return json_response(
            {
                "status": "success",
                "data": {
                    "authToken": done.auth_token,
                    "userId": str(user.id),
                    "me": {"_id": str(user.id), "username": user.username, "active": True},
                },
            }
        )

    @view(bp)
    async def put_token() -> Response:
        user = await caller()
        wanted = schemas.token_registration(await schemas.json_body(request))
        saved = await rocket.put_token(user, wanted)
        document: dict[str, Any] = {
            "_id": saved.face_ref,
            "token": {_KIND_OF[saved.platform]: saved.token},
            "appName": wanted.app_name,
            "userId": str(user.id),
            "enabled": saved.active,
            "createdAt": format_rfc3339(saved.created_at),
            "updatedAt": format_rfc3339(saved.updated_at),
        }
        return json_response({"result": document, "success": True})

    @view(bp)
    async def delete_token() -> Response:
        user = await caller()
        await rocket.delete_token(user, schemas.token_removal(await schemas.json_body(request)))
        return json_response({"success": True})

    @view(bp)
    async def info() -> Response:
        await caller()
        # This server sends to the providers itself: no Rocket.Chat cloud gateway.
        return json_response(
            {"pushGatewayEnabled": False, "defaultPushGateway": False, "success": True}
        )
