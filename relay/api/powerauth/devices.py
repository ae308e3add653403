"""``/push/device/...``: create, create/multi, delete (also the documented ``remove``),
status update (with or without the envelope)."""

from __future__ import annotations

from quart import Blueprint, Response, request

from relay.api.powerauth.envelope import ok, request_dict
from relay.api.routes import view
from relay.services.powerauth import PowerAuth


def register(bp: Blueprint, powerauth: PowerAuth) -> None:
    """Add the device routes."""
    devices = powerauth.devices

    @view(bp)
    async def devices_create() -> Response:
        await devices.create(await request_dict(request))
        return ok()

    @view(bp)
    async def devices_create_multi() -> Response:
        await devices.create_multi(await request_dict(request))
        return ok()

    @view(bp)
    async def devices_delete() -> Response:
        await devices.delete(await request_dict(request))
        return ok()

    @view(bp)
    async def devices_update_status() -> Response:
        await devices.update_status(await request_dict(request, wrapped=None))
        return ok()
