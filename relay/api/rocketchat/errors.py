"""Rocket.Chat's error convention: validation errors are ``{"success": false, "error":
..., "errorType": ...}``; unauthenticated calls ``{"status": "error", "message": ...}``
(401)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from relay.api.http import json_response
from relay.api.outages import unavailable
from relay.errors import NotFound, RelayError
from relay.services.face_logins import TooManyAttempts
from relay.services.rocketchat import NotLoggedIn
from storage.errors import StorageError, StorageUnavailable


class RocketChatError(RelayError):
    """A Rocket.Chat error: ``errorType`` and message."""

    def __init__(self, error_type: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.status = status


def _failure(error_type: str, message: str, status: int) -> Response:
    body = {"success": False, "error": message, "errorType": error_type}
    return json_response(body, status=status)


def register_error_handlers(bp: Blueprint) -> None:
    """Translate service and storage errors into Rocket.Chat's bodies."""

    @bp.errorhandler(RelayError)
    async def relay_error(error: RelayError) -> Response:
        if isinstance(error, NotLoggedIn):
            body: dict[str, Any] = {"status": "error", "message": error.message}
            if error.message == "Unauthorized":
                body["error"] = "Unauthorized"
            return json_response(body, status=401)
        if isinstance(error, RocketChatError):
            return _failure(error.error_type, error.message, error.status)
        if isinstance(error, NotFound):
            return _failure("error-not-found", error.message, 404)
        return _failure("error-invalid", error.message, error.status)

    @bp.errorhandler(TooManyAttempts)
    async def too_many_attempts(error: TooManyAttempts) -> Response:
        del error
        return _failure("error-too-many-requests", "Too many failed login attempts", 429)

    @bp.errorhandler(StorageError)
    async def storage_error(error: StorageError) -> Response:
        if isinstance(error, StorageUnavailable):
            body = {"success": False, "error": "Service unavailable"}
            response = json_response(body, status=503)
            response.headers.update(unavailable(error))
            return response
        return json_response({"success": False, "error": "Internal server error"}, status=500)
