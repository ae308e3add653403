"""PowerAuth's error convention: ``{"status": "ERROR", "responseObject": {code, message
[, violations]}}`` with the error's status, for service errors and for the ones only the
API raises (integrator authentication, content type, storage)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from relay.api.http import json_response
from relay.api.outages import unavailable
from relay.errors import RelayError
from relay.services.powerauth.errors import PowerAuthError
from storage.errors import IntegrityViolation, StorageError, StorageUnavailable


class Unauthorized(PowerAuthError):
    """No or an unknown integrator key (the reference has no authentication at all)."""

    status = 401
    code = "ERROR_UNAUTHORIZED"


class UnsupportedContentType(PowerAuthError):
    """The body is not JSON (415)."""

    status = 415


class DataIntegrity(PowerAuthError):
    """A concurrent change collided with this one (``ERROR_DATA_INTEGRITY``, 409)."""

    status = 409
    code = "ERROR_DATA_INTEGRITY"


class DatabaseFailure(PowerAuthError):
    """The database failed (``ERROR_DATABASE``, 500)."""

    status = 500
    code = "ERROR_DATABASE"


class DatabaseUnavailable(DatabaseFailure):
    """The database is unreachable for now (``ERROR_DATABASE``, 503)."""

    status = 503


def error_body(error: PowerAuthError) -> Response:
    """``{"status": "ERROR", "responseObject": {code, message[, violations]}}``."""
    detail: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.violations:
        detail["violations"] = [
            {"fieldName": item.field_name, "invalidValue": item.invalid_value, "hint": item.hint}
            for item in error.violations
        ]
    return json_response({"status": "ERROR", "responseObject": detail}, status=error.status)


def register_error_handlers(bp: Blueprint) -> None:
    """Translate service and storage errors into PowerAuth's bodies."""

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
