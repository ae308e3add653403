"""Key upload and pre-key bundles: ``/v1/devices/keys`` and ``GET /v1/users/{userId}``."""

from __future__ import annotations

from quart import Blueprint, Response, request

from relay.api.http import bearer_token, empty_response, json_response, path_uuid, read_json
from relay.api.obscura.responses import bundle_response
from relay.api.obscura.schemas import PreKeyUploadRequest
from relay.services.registry import Services


def register(bp: Blueprint, services: Services) -> None:
    """Add the key routes to ``bp``."""

    @bp.post("/v1/devices/keys")
    async def upload_keys() -> Response:
        principal = services.sessions.authenticate(bearer_token(request))
        body = await read_json(request, PreKeyUploadRequest)
        await services.keys.upload(
            principal,
            body.identity_key,
            body.registration_id,
            body.signed_pre_key_input(),
            body.one_time_pre_key_inputs(),
        )
        return empty_response()

    @bp.get("/v1/users/<user_id>")
    async def pre_key_bundles(user_id: str) -> Response:
        principal = services.sessions.authenticate(bearer_token(request))
        target = path_uuid(user_id)
        bundles = await services.keys.fetch_bundles(principal, target)
        return json_response([bundle_response(b) for b in bundles])
