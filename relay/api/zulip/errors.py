"""Zulip's error convention: ``{"result": "error", "msg": ..., "code": ...}`` plus the
error's own fields, with ``Retry-After`` / ``WWW-Authenticate`` where they apply."""

from __future__ import annotations

from quart import Blueprint, Response

from relay.api.http import json_response
from relay.api.outages import unavailable
from relay.errors import RelayError
from relay.services.zulip.errors import ZulipError
from storage.errors import StorageError, StorageUnavailable


def error_body(error: ZulipError) -> Response:
    """Zulip's error body for ``error``."""
    body = {"result": "error", "msg": error.message, "code": error.code, **error.fields}
    response = json_response(body, status=error.status)
    if "retry-after" in error.fields:
        response.headers["Retry-After"] = str(error.fields["retry-after"])
    if error.status == 401 and error.code != "AUTHENTICATION_FAILED":
        response.headers["WWW-Authenticate"] = 'Basic realm="zulip"'
    return response


def register_error_handlers(bp: Blueprint) -> None:
    """Translate service and storage errors into Zulip's bodies."""

    @bp.errorhandler(RelayError)
    async def relay_error(error: RelayError) -> Response:
        if not isinstance(error, ZulipError):
            error = ZulipError("BAD_REQUEST", error.message, status=error.status)
        return error_body(error)

    @bp.errorhandler(StorageError)
    async def storage_error(error: StorageError) -> Response:
        if isinstance(error, StorageUnavailable):
            response = error_body(
                ZulipError("INTERNAL_SERVER_ERROR", "Service temporarily unavailable", status=503)
            )
            response.headers.update(unavailable(error))
            return response
        return error_body(ZulipError("INTERNAL_SERVER_ERROR", "Internal server error", status=500))
