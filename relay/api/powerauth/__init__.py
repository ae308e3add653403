"""The PowerAuth Push Server API (``/push/...``, ``/admin/app/...``, ``/inbox/...``).

Bodies use the reference's envelope ``{"requestObject": ...}`` and answer
``{"status": "OK"|"ERROR", "responseObject": ...}``. Unlike the reference, every route
requires an integrator key (``Authorization: Bearer <key>``, ``relay keys create``)
unless ``RELAY_POWERAUTH_OPEN`` is set.
"""

from __future__ import annotations

from quart import Blueprint, request

from relay.api.powerauth import admin, campaigns, devices, errors, inbox, messages, service
from relay.api.powerauth.envelope import verify_integrator
from relay.services.powerauth import PowerAuth


def blueprint(powerauth: PowerAuth) -> Blueprint:
    """Every PowerAuth route, bound to the face's services."""
    bp = Blueprint("powerauth", __name__)

    @bp.before_request
    async def authenticate() -> None:
        await verify_integrator(powerauth, request.headers.get("Authorization"))

    errors.register_error_handlers(bp)
    service.register(bp)
    for module in (devices, messages, campaigns, admin, inbox):
        module.register(bp, powerauth)
    return bp
