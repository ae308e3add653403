"""``/admin/app/...``: applications and their APNs, FCM and HMS credentials, with the
deprecated ``ios``/``android``/``huawei`` aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from quart import Blueprint, Response, request

from providers.message import Platform
from relay.api.powerauth import schemas
from relay.api.powerauth.envelope import ok, read_json, request_dict
from relay.api.routes import view
from relay.services.powerauth import PowerAuth
from relay.services.push.apps import AppInfo
from relay.services.push.queue import JobRecord, masked_token


def summary(app: AppInfo) -> dict[str, Any]:
    """``{appId, apns, fcm, hms}``: which providers are configured."""
    return {
        "appId": app.name,
        "apns": "apns" in app.providers,
        "fcm": "fcm" in app.providers,
        "hms": "hms" in app.providers,
    }


def detail(app: AppInfo, body: dict[str, Any]) -> dict[str, Any]:
    """The app and the public settings of the providers ``include*`` asks for."""
    shown: dict[str, Any] = {"application": summary(app)}
    apns = app.providers.get("apns")
    if body.get("includeApns") and apns is not None:
        shown.update(
            apnsBundle=apns["bundle_id"],
            apnsKeyId=apns["key_id"],
            apnsTeamId=apns["team_id"],
            apnsEnvironment=apns["environment"],
        )
    fcm = app.providers.get("fcm")
    if body.get("includeFcm") and fcm is not None:
        shown["fcmProjectId"] = fcm["project_id"]
    hms = app.providers.get("hms")
    if body.get("includeHms") and hms is not None:
        shown["hmsProjectId"] = hms.get("project_id")
    return shown


def job_summary(job: JobRecord, app: str | None) -> dict[str, Any]:
    """One push job as the listing shows it (the token masked: it addresses a phone)."""
    return {
        "id": str(job.id),
        "appId": app,
        "platform": job.platform,
        "token": masked_token(job.token),
        "status": job.state.upper(),
        "attempts": job.attempts,
        "reason": job.reason,
        "timestampCreated": _iso(job.created_at),
        "timestampUpdated": _iso(job.updated_at),
    }


def _iso(timestamp_us: int) -> str:
    return datetime.fromtimestamp(timestamp_us / 1_000_000, UTC).isoformat(timespec="seconds")


async def _app_of_removal() -> str:
    # DELETE /admin/app/<provider>?appId=...; the deprecated forms carry a body.
    if request.args.get("appId"):
        return request.args["appId"]
    body = await read_json(request)
    if isinstance(body, dict) and isinstance(body.get("requestObject"), dict):
        return schemas.app_name(body["requestObject"])
    return schemas.app_name({})


def register(bp: Blueprint, powerauth: PowerAuth) -> None:
    """Add the administration routes."""
    admin = powerauth.admin

    @view(bp)
    async def admin_app_list() -> Response:
        apps = await admin.list()
        return ok({"applicationList": [summary(app) for app in apps]})

    @view(bp)
    async def admin_push_jobs() -> Response:
        query = schemas.jobs_query(request.args)
        jobs = await admin.jobs(
            query.app, failed_only=query.failed_only, since=query.since, limit=query.limit
        )
        return ok({"jobs": [job_summary(job, app) for job, app in jobs]})

    @view(bp)
    async def admin_unconfigured() -> Response:
        apps = await admin.list(unconfigured=True)
        listed = [{"appId": app.name, "apns": None, "fcm": None, "hms": None} for app in apps]
        return ok({"applicationList": listed})

    @view(bp)
    async def admin_detail() -> Response:
        body = await request_dict(request)
        return ok(detail(await admin.detail(schemas.app_name(body)), body))

    @view(bp)
    async def admin_create() -> Response:
        name = schemas.app_name(await request_dict(request))
        return ok({"appId": await admin.create(name)})

    async def set_apns(body: dict[str, Any]) -> None:
        await admin.set_apns(schemas.apns_settings(body))

    async def set_fcm(body: dict[str, Any]) -> None:
        await admin.set_fcm(schemas.fcm_settings(body))

    async def set_hms(body: dict[str, Any]) -> None:
        await admin.set_hms(schemas.hms_settings(body))

    setters: dict[Platform, Callable[[dict[str, Any]], Awaitable[None]]] = {
        Platform.APNS: set_apns,
        Platform.FCM: set_fcm,
        Platform.HMS: set_hms,
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
