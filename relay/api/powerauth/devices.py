"""``/push/device/...``: create, create/multi, delete (also the documented ``remove``),
status update (with or without the envelope)."""

from __future__ import annotations

from quart import Blueprint, Response, request

from relay.api.powerauth import schemas
from relay.api.powerauth.envelope import ok, request_dict
from relay.api.routes import view
from relay.services.powerauth import PowerAuth


def register(bp: Blueprint, powerauth: PowerAuth) -> None:
    """Add the device routes."""
    devices = powerauth.devices

    @view(bp)
    async def devices_create() -> Response:
        body = await request_dict(request)
        await devices.create(schemas.device_registration(body, multi=False))
        return ok()

    @view(bp)
    async def devices_create_multi() -> Response:
        devices.require_multiple()  # before the body is even read, as the reference does
        body = await request_dict(request)
        await devices.create_multi(schemas.device_registration(body, multi=True))
        return ok()

    @view(bp)
    async def devices_delete() -> Response:
        await devices.delete(schemas.device_removal(await request_dict(request)))
        return ok()

    @view(bp)
    async def devices_update_status() -> Response:
        body = await request_dict(request, wrapped=None)
        await devices.update_status(schemas.status_update(body))
        return ok()
