"""Key upload and pre-key bundles: ``/v1/devices/keys`` and ``GET /v1/users/{userId}``."""

from __future__ import annotations

from quart import Blueprint, Response, request

from relay.api.http import bearer_token, empty_response, json_response, path_uuid, read_json
from relay.api.obscura.responses import bundle_response
from relay.api.obscura.schemas import PreKeyUploadRequest
from relay.api.routes import view
from relay.services.keys import KeyService
from relay.services.sessions import SessionService


def register(bp: Blueprint, sessions: SessionService, keys: KeyService) -> None:
    """Add the key routes to ``bp``."""

    @view(bp)
    async def upload_keys() -> Response:
        principal = sessions.authenticate(bearer_token(request))
        body = await read_json(request, PreKeyUploadRequest)
        await keys.upload(
            principal,
            body.identity_key,
            body.registration_id,
            body.signed_pre_key_input(),
            body.one_time_pre_key_inputs(),
        )
        return empty_response()

    @bp.before_request
    async def keys_other_methods() -> Response | None:
        # Otherwise /v1/devices/<device_id> takes these methods and answers 400 for the
        # id "keys"; the reference's static route answers 405.
        if request.path != "/v1/devices/keys" or request.method == "POST":
            return None
        response = empty_response(405)
        response.headers["Allow"] = "POST"
        return response

    @view(bp)
    async def pre_key_bundles(user_id: str) -> Response:
        principal = sessions.authenticate(bearer_token(request))
        target = path_uuid(user_id)
        bundles = await keys.fetch_bundles(principal, target)
        return json_response([bundle_response(b) for b in bundles])
