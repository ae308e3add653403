"""The PowerAuth Push Server API (``/push/...``, ``/admin/app/...``, ``/inbox/...``).

Bodies use the reference's envelope ``{"requestObject": ...}`` and answer
``{"status": "OK"|"ERROR", "responseObject": ...}``. Unlike the reference, every route
requires an integrator key (``Authorization: Bearer <key>``, ``relay keys create``)
unless ``RELAY_POWERAUTH_OPEN`` is set.
"""

from __future__ import annotations

from quart import Blueprint, Response, request

from relay.api.outages import unavailable
from relay.api.powerauth import admin, campaigns, devices, inbox, messages, service
from relay.api.powerauth.envelope import error_body, verify_integrator
from relay.errors import RelayError
from relay.services.powerauth import PowerAuth
from relay.services.powerauth.errors import (
    DatabaseFailure,
    DatabaseUnavailable,
    DataIntegrity,
    PowerAuthError,
)
from storage.errors import IntegrityViolation, StorageError, StorageUnavailable


def blueprint(powerauth: PowerAuth) -> Blueprint:
    """Every PowerAuth route, bound to the face's services."""
    bp = Blueprint("powerauth", __name__)

    @bp.before_request
    async def authenticate() -> None:
        await verify_integrator(powerauth, request.headers.get("Authorization"))

    @bp.errorhandler(RelayError)
    async def relay_error(error: RelayError) -> Response:
        if not isinstance(error, PowerAuthError):
            error = PowerAuthError(error.message)
        return error_body(error)

    @bp.errorhandler(StorageError)
    async def storage_error(error: StorageError) -> Response:
        if isinstance(error, IntegrityViolation):
            # A concurrent request changed the same registration (the reference: 409).
            return error_body(DataIntegrity("Data integrity violation, retry the request"))
        if isinstance(error, StorageUnavailable):
            response = error_body(DatabaseUnavailable("Database unavailable, retry shortly"))
            response.headers.update(unavailable(error))
            return response
        return error_body(DatabaseFailure("Database error"))

    service.register(bp)
    for module in (devices, messages, campaigns, admin, inbox):
        module.register(bp, powerauth)
    return bp
