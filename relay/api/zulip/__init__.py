"""The Zulip-compatible API (``/api/v1/server_settings``, ``fetch_api_key``,
``mobile_push/register``, ``mobile_push/e2ee/test_notification``).

Parameters come form-encoded (or in the query string); errors are
``{"result": "error", "msg": ..., "code": ...}``; authenticated endpoints take HTTP Basic
``username:api_key``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from quart import Blueprint, Request, Response, request

from relay import __version__
from relay.api.http import json_response
from relay.api.outages import unavailable
from relay.api.routes import view
from relay.errors import RelayError
from relay.services.zulip.errors import ZulipError, missing
from relay.services.zulip.service import UserRecord, ZulipService
from storage.errors import StorageError, StorageUnavailable

FEATURE_LEVEL = 406
ZULIP_VERSION = "11.0"
_REGISTER_PARAMS = (
    "token_kind",
    "push_account_id",
    "push_key",
    "bouncer_public_key",
    "encrypted_push_registration",
)


def success(**fields: Any) -> Response:
    """``{"result": "success", "msg": "", ...}``."""
    return json_response({"result": "success", "msg": "", **fields})


def error_body(error: ZulipError) -> Response:
    """Zulip's error body, with ``Retry-After`` / ``WWW-Authenticate`` where they apply."""
    body = {"result": "error", "msg": error.message, "code": error.code, **error.fields}
    response = json_response(body, status=error.status)
    if "retry-after" in error.fields:
        response.headers["Retry-After"] = str(error.fields["retry-after"])
    if error.status == 401 and error.code != "AUTHENTICATION_FAILED":
        response.headers["WWW-Authenticate"] = 'Basic realm="zulip"'
    return response


async def parameters(req: Request) -> dict[str, str]:
    """Query and form parameters (the form wins)."""
    values = dict(req.args.items())
    form = await req.form
    values.update(dict(form.items()))
    return values


def _required(values: dict[str, str], name: str) -> str:
    if name not in values:
        raise missing(name)
    return values[name]


async def authenticate(zulip: ZulipService, req: Request) -> UserRecord:
    """The user of the request's HTTP Basic credentials."""
    header = req.headers.get("Authorization")
    if header is None or not header.startswith("Basic "):
        raise ZulipError(
            "UNAUTHORIZED",
            "Not logged in: API authentication or user session required",
            status=401,
        )
    try:
        login, _, api_key = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise ZulipError("INVALID_API_KEY", "Malformed API key", status=401) from None
    return await zulip.authenticate(login, api_key)


def blueprint(zulip: ZulipService) -> Blueprint:
    """The Zulip routes, bound to the face's service."""
    bp = Blueprint("zulip", __name__)

    @bp.errorhandler(RelayError)
    async def relay_error(error: RelayError) -> Response:
        if not isinstance(error, ZulipError):
            error = ZulipError("BAD_REQUEST", error.message, status=error.status)
        return error_body(error)

    @bp.errorhandler(StorageError)
    async def storage_error(error: StorageError) -> Response:
        if isinstance(error, StorageUnavailable):
            response = error_body(
                ZulipError("INTERNAL_SERVER_ERROR", "Service temporarily unavailable", status=503)
            )
            response.headers.update(unavailable(error))
            return response
        return error_body(ZulipError("INTERNAL_SERVER_ERROR", "Internal server error", status=500))

    @view(bp)
    async def server_settings() -> Response:
        return success(
            zulip_version=ZULIP_VERSION,
            zulip_feature_level=FEATURE_LEVEL,
            zulip_merge_base=ZULIP_VERSION,
            push_notifications_enabled=await zulip.push_configured(),
            is_incompatible=False,
            email_auth_enabled=True,
            require_email_format_usernames=False,
            authentication_methods={"password": True, "dev": False, "email": True, "ldap": False},
            external_authentication_methods=[],
            realm_name=zulip.config.realm_name,
            realm_url=request.host_url.rstrip("/"),
            realm_uri=request.host_url.rstrip("/"),
            realm_web_public_access_enabled=False,
            server_version_detail=f"obscura-relay {__version__}",
        )

    @view(bp)
    async def fetch_api_key() -> Response:
        values = await parameters(request)
        key = await zulip.fetch_api_key(
            _required(values, "username"), _required(values, "password")
        )
        return success(api_key=key.api_key, email=key.email, user_id=key.user_id)

    @view(bp)
    async def register_push_device() -> Response:
        user = await authenticate(zulip, request)
        values = await parameters(request)
        await zulip.register(user, **{name: _required(values, name) for name in _REGISTER_PARAMS})
        ignored = sorted(set(values) - set(_REGISTER_PARAMS))
        if ignored:
            return success(ignored_parameters_unsupported=ignored)
        return success()

    @view(bp)
    async def test_notification() -> Response:
        user = await authenticate(zulip, request)
        values = await parameters(request)
        await zulip.test_notification(
            user,
            push_account_id=values.get("push_account_id"),
            realm_url=request.host_url.rstrip("/"),
        )
        return success()

    return bp
