"""``/admin/app/...``: applications and their APNs, FCM and HMS credentials, with the
deprecated ``ios``/``android``/``huawei`` aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from quart import Blueprint, Response, request

from providers.message import Platform
from relay.api.powerauth.envelope import ok, read_json, request_dict
from relay.services.powerauth.admin import summary
from relay.services.registry import Services

# (platform, current path, deprecated update path, deprecated remove path)
_PROVIDERS = (
    (Platform.APNS, "/admin/app/apns", "/admin/app/ios/update", "/admin/app/ios/remove"),
    (Platform.FCM, "/admin/app/fcm", "/admin/app/android/update", "/admin/app/android/remove"),
    (Platform.HMS, "/admin/app/hms", "/admin/app/huawei/update", "/admin/app/huawei/remove"),
)


async def _app_of_removal() -> dict[str, Any]:
    # DELETE /admin/app/<provider>?appId=...; the deprecated forms carry a body.
    if request.args.get("appId"):
        return {"appId": request.args["appId"]}
    body = await read_json(request)
    if isinstance(body, dict) and isinstance(body.get("requestObject"), dict):
        return dict(body["requestObject"])
    return {}


def register(bp: Blueprint, services: Services) -> None:
    """Add the administration routes."""
    admin = services.powerauth.admin

    @bp.get("/admin/app/list")
    async def admin_app_list() -> Response:
        apps = await admin.list()
        return ok({"applicationList": [summary(app) for app in apps]})

    @bp.get("/admin/app/unconfigured/list")
    async def admin_unconfigured() -> Response:
        apps = await admin.list(unconfigured=True)
        listed = [{"appId": app.name, "apns": None, "fcm": None, "hms": None} for app in apps]
        return ok({"applicationList": listed})

    @bp.post("/admin/app/detail")
    async def admin_detail() -> Response:
        return ok(await admin.detail(await request_dict(request)))

    @bp.post("/admin/app/create")
    async def admin_create() -> Response:
        return ok({"appId": await admin.create(await request_dict(request))})

    setters: dict[Platform, Callable[[dict[str, Any]], Awaitable[None]]] = {
        Platform.APNS: admin.set_apns,
        Platform.FCM: admin.set_fcm,
        Platform.HMS: admin.set_hms,
    }
    for platform, path, old_update, old_remove in _PROVIDERS:
        setter = setters[platform]

        async def update(setter: Callable[[dict[str, Any]], Awaitable[None]] = setter) -> Response:
            await setter(await request_dict(request))
            return ok()

        async def remove(platform: Platform = platform) -> Response:
            await admin.remove(await _app_of_removal(), platform)
            return ok()

        name = platform.value
        bp.add_url_rule(path, f"{name}_update", update, methods=["POST", "PUT"])
        bp.add_url_rule(old_update, f"{name}_update_deprecated", update, methods=["POST", "PUT"])
        bp.add_url_rule(path, f"{name}_remove", remove, methods=["DELETE"])
        bp.add_url_rule(old_remove, f"{name}_remove_deprecated", remove, methods=["POST", "DELETE"])
