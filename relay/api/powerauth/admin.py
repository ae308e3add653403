"""``/admin/app/...``: applications and their APNs, FCM and HMS credentials, with the
deprecated ``ios``/``android``/``huawei`` aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from quart import Blueprint, Response, request

from providers.message import Platform
from relay.api.powerauth.envelope import ok, read_json, request_dict
from relay.api.routes import view
from relay.services.powerauth import PowerAuth
from relay.services.powerauth.admin import summary


async def _app_of_removal() -> dict[str, Any]:
    # DELETE /admin/app/<provider>?appId=...; the deprecated forms carry a body.
    if request.args.get("appId"):
        return {"appId": request.args["appId"]}
    body = await read_json(request)
    if isinstance(body, dict) and isinstance(body.get("requestObject"), dict):
        return dict(body["requestObject"])
    return {}


def register(bp: Blueprint, powerauth: PowerAuth) -> None:
    """Add the administration routes."""
    admin = powerauth.admin

    @view(bp)
    async def admin_app_list() -> Response:
        apps = await admin.list()
        return ok({"applicationList": [summary(app) for app in apps]})

    @view(bp)
    async def admin_unconfigured() -> Response:
        apps = await admin.list(unconfigured=True)
        listed = [{"appId": app.name, "apns": None, "fcm": None, "hms": None} for app in apps]
        return ok({"applicationList": listed})

    @view(bp)
    async def admin_detail() -> Response:
        return ok(await admin.detail(await request_dict(request)))

    @view(bp)
    async def admin_create() -> Response:
        return ok({"appId": await admin.create(await request_dict(request))})

    setters: dict[Platform, Callable[[dict[str, Any]], Awaitable[None]]] = {
        Platform.APNS: admin.set_apns,
        Platform.FCM: admin.set_fcm,
        Platform.HMS: admin.set_hms,
    }
    for platform, setter in setters.items():

        async def update(setter: Callable[[dict[str, Any]], Awaitable[None]] = setter) -> Response:
            await setter(await request_dict(request))
            return ok()

        async def remove(platform: Platform = platform) -> Response:
            await admin.remove(await _app_of_removal(), platform)
            return ok()

        view(bp, f"{platform.value}_update")(update)
        view(bp, f"{platform.value}_remove")(remove)
