"""The Rocket.Chat-compatible push API: ``POST /api/v1/login``, ``POST`` and ``DELETE
/api/v1/push.token``, ``GET /api/v1/push.info``.

Validation errors are ``{"success": false, "error": ..., "errorType": ...}`` (400);
unauthenticated calls get ``{"status": "error", "message": ...}`` (401).
"""

from __future__ import annotations

from typing import Any

import msgspec
from quart import Blueprint, Request, Response, request

from relay.api.http import json_response
from relay.api.outages import unavailable
from relay.api.routes import view
from relay.errors import RelayError
from relay.services.rocketchat import NotLoggedIn, RocketChatError, RocketChatService
from storage.errors import StorageError, StorageUnavailable


async def json_body(req: Request) -> dict[str, Any]:
    """A JSON object body (form-encoded bodies are accepted too)."""
    raw = await req.get_data(cache=True, as_text=False, parse_form_data=False)
    content_type = (req.headers.get("Content-Type") or "").lower()
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = await req.form
        return dict(form.items())
    if not raw.strip():
        return {}
    try:
        body = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise RocketChatError("error-invalid-body", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise RocketChatError("error-invalid-body", "The request body must be a JSON object.")
    return body


def blueprint(rocket: RocketChatService) -> Blueprint:
    """The Rocket.Chat routes, bound to the face's service."""
    bp = Blueprint("rocketchat", __name__)

    @bp.errorhandler(RelayError)
    async def relay_error(error: RelayError) -> Response:
        if isinstance(error, NotLoggedIn):
            body: dict[str, Any] = {"status": "error", "message": error.message}
            if error.message == "Unauthorized":
                body["error"] = "Unauthorized"
            return json_response(body, status=401)
        error_type = error.error_type if isinstance(error, RocketChatError) else "error-invalid"
        return json_response(
            {"success": False, "error": error.message, "errorType": error_type},
            status=error.status,
        )

    @bp.errorhandler(StorageError)
    async def storage_error(error: StorageError) -> Response:
        if isinstance(error, StorageUnavailable):
            body = {"success": False, "error": "Service unavailable"}
            response = json_response(body, status=503)
            response.headers.update(unavailable(error))
            return response
        return json_response({"success": False, "error": "Internal server error"}, status=500)

    async def caller() -> Any:
        return await rocket.authenticate(
            request.headers.get("X-Auth-Token"), request.headers.get("X-User-Id")
        )

    @view(bp)
    async def login() -> Response:
        done = await rocket.login(await json_body(request))
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
        document = await rocket.put_token(user, await json_body(request))
        return json_response({"result": document, "success": True})

    @view(bp)
    async def delete_token() -> Response:
        user = await caller()
        await rocket.delete_token(user, await json_body(request))
        return json_response({"success": True})

    @view(bp)
    async def info() -> Response:
        await caller()
        # This server sends to the providers itself: no Rocket.Chat cloud gateway.
        return json_response(
            {"pushGatewayEnabled": False, "defaultPushGateway": False, "success": True}
        )

    return bp
