"""The Zulip routes: ``GET /api/v1/server_settings``, ``POST /api/v1/fetch_api_key``,
``POST /api/v1/mobile_push/register``, ``POST /api/v1/mobile_push/e2ee/test_notification``."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Request, Response, request

from relay import __version__
from relay.api.http import json_response
from relay.api.routes import view
from relay.api.zulip import schemas
from relay.services.zulip.service import UserRecord, ZulipService

FEATURE_LEVEL = 406
ZULIP_VERSION = "11.0"


def success(**fields: Any) -> Response:
    """``{"result": "success", "msg": "", ...}``."""
    return json_response({"result": "success", "msg": "", **fields})


async def authenticate(zulip: ZulipService, req: Request) -> UserRecord:
    """The user of the request's HTTP Basic credentials."""
    credentials = schemas.basic_credentials(req.headers.get("Authorization"))
    return await zulip.authenticate(credentials.login, credentials.api_key)


def register(bp: Blueprint, zulip: ZulipService) -> None:
    """Add the routes to ``bp``."""

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
        values = await schemas.parameters(request)
        key = await zulip.fetch_api_key(
            schemas.required(values, "username"), schemas.required(values, "password")
        )
        return success(api_key=key.api_key, email=key.email, user_id=key.user_id)

    @view(bp)
    async def register_push_device() -> Response:
        user = await authenticate(zulip, request)
        wanted, ignored = schemas.push_registration(await schemas.parameters(request))
        await zulip.register(user, wanted)
        if ignored:
            return success(ignored_parameters_unsupported=ignored)
        return success()

    @view(bp)
    async def test_notification() -> Response:
        user = await authenticate(zulip, request)
        values = await schemas.parameters(request)
        await zulip.test_notification(
            user,
            push_account_id=values.get("push_account_id"),
            realm_url=request.host_url.rstrip("/"),
        )
        return success()
