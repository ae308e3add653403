"""Device management: ``/v1/devices`` and ``/v1/devices/{deviceId}``."""

from __future__ import annotations

from quart import Blueprint, Response, request

from relay.api.http import bearer_token, empty_response, json_response, path_uuid, read_json
from relay.api.obscura.responses import auth_response, device_response
from relay.api.obscura.schemas import CreateDeviceRequest, UpdateDeviceRequest
from relay.api.routes import view
from relay.services.devices import DeviceService
from relay.services.sessions import SessionService


def register(bp: Blueprint, sessions: SessionService, devices: DeviceService) -> None:
    """Add the device routes to ``bp``."""

    @view(bp)
    async def create_device() -> Response:
        principal = sessions.authenticate(bearer_token(request))
        body = await read_json(request, CreateDeviceRequest)
        session = await devices.create(
            principal,
            body.name,
            body.identity_key,
            body.registration_id,
            body.signed_pre_key_input(),
            body.one_time_pre_key_inputs(),
        )
        return json_response(auth_response(session), status=201)

    @view(bp)
    async def list_devices() -> Response:
        principal = sessions.authenticate(bearer_token(request))
        owned = await devices.list_owned(principal)
        return json_response({"devices": [device_response(d) for d in owned]})

    @view(bp)
    async def get_device(device_id: str) -> Response:
        principal = sessions.authenticate(bearer_token(request))
        device = await devices.get(principal, path_uuid(device_id))
        return json_response(device_response(device))

    @view(bp)
    async def rename_device(device_id: str) -> Response:
        principal = sessions.authenticate(bearer_token(request))
        target = path_uuid(device_id)
        body = await read_json(request, UpdateDeviceRequest)
        device = await devices.rename(principal, target, body.name)
        return json_response(device_response(device))

    @view(bp)
    async def delete_device(device_id: str) -> Response:
        principal = sessions.authenticate(bearer_token(request))
        await devices.delete(principal, path_uuid(device_id))
        return empty_response()
