"""``/push/campaign/...``: create, list, detail, delete, users, test and live sends."""

from __future__ import annotations

import json
from typing import Any

from quart import Blueprint, Response, request

from relay.api.powerauth import schemas
from relay.api.powerauth.envelope import (
    campaign_id,
    ok,
    query_bool,
    query_int,
    request_dict,
    request_object,
)
from relay.api.routes import view
from relay.services.powerauth import PowerAuth
from relay.services.powerauth.campaigns import Campaign, CampaignProgress
from storage.ids import format_rfc3339

MAX_PAGE_SIZE = 10_000


def _time(value: int | None) -> str | None:
    return None if value is None else format_rfc3339(value)


def campaign_body(campaign: Campaign) -> dict[str, Any]:
    """``{id, appId, sent, message}`` (ids as strings, as the document shows them)."""
    return {
        "id": str(campaign.id),
        "appId": campaign.app_name,
        "sent": campaign.sent,
        "message": json.loads(campaign.message),
    }


def detail_body(progress: CampaignProgress) -> dict[str, Any]:
    """The campaign plus its timestamps and delivery progress."""
    campaign = progress.campaign
    return {
        **campaign_body(campaign),
        "timestampCreated": _time(campaign.created_at),
        "timestampSent": _time(campaign.sent_at),
        "timestampCompleted": _time(campaign.completed_at),
        "progress": {
            "state": campaign.state,
            "devices": campaign.devices,
            "sent": progress.jobs.get("sent", 0),
            "failed": progress.jobs.get("failed", 0),
            "pending": progress.jobs.get("pending", 0),
        },
    }


def register(bp: Blueprint, powerauth: PowerAuth) -> None:
    """Add the campaign routes."""
    campaigns = powerauth.campaigns

    @view(bp)
    async def campaigns_create() -> Response:
        created = await campaigns.create(schemas.campaign_draft(await request_dict(request)))
        return ok({"id": str(created)})

    @view(bp)
    async def campaigns_delete(ident: str) -> Response:
        return ok({"deleted": await campaigns.delete(campaign_id(ident))})

    @view(bp)
    async def campaigns_detail(ident: str) -> Response:
        return ok(detail_body(await campaigns.get(campaign_id(ident))))

    @view(bp)
    async def campaigns_listing() -> Response:
        found = await campaigns.all(everything=query_bool(request, "all"))
        return ok([campaign_body(item) for item in found])

    @view(bp)
    async def campaigns_add_users(ident: str) -> Response:
        users = schemas.user_list(await request_object(request))
        await campaigns.add_users(campaign_id(ident), users)
        return ok()

    @view(bp)
    async def campaigns_list_users(ident: str) -> Response:
        page = query_int(request, "page", 0)
        size = query_int(request, "size", 20, maximum=MAX_PAGE_SIZE) or 20
        users = await campaigns.users(campaign_id(ident), page=page, size=size)
        return ok({"campaignId": ident, "users": users}, page=page, size=size)

    @view(bp)
    async def campaigns_delete_users(ident: str) -> Response:
        users = schemas.user_list(await request_object(request))
        await campaigns.delete_users(campaign_id(ident), users)
        return ok()

    @view(bp)
    async def campaigns_send_test(ident: str) -> Response:
        user_id = schemas.test_user(await request_dict(request, wrapped=None))
        await campaigns.send_test(campaign_id(ident), user_id)
        return ok()

    @view(bp)
    async def campaigns_send_live(ident: str) -> Response:
        await campaigns.send_live(campaign_id(ident))
        return ok()
