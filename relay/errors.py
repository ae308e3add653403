"""The relay's error hierarchy.

Services raise these; each API face translates them at its boundary into its own
convention (Obscura ``{"error": ...}``, PowerAuth, Zulip, Rocket.Chat). The classes name
*what went wrong*, and each carries the HTTP status the Obscura face uses for it::

    RelayError
    ├── InvalidInput          400  the request is well-formed but its values are not
    ├── AuthenticationFailed  401  missing, invalid or expired credentials
    ├── PermissionDenied      403  authenticated, but not allowed (scope, limits)
    ├── NotFound              404  absent, or not visible to this caller
    ├── Conflict              409  the state does not allow it (duplicates, races)
    ├── LengthRequired        411
    ├── PreconditionFailed    412
    └── PayloadTooLarge       413
"""

from __future__ import annotations


class RelayError(Exception):
    """Base class; ``message`` is safe to show to the client."""

    status = 500
    default_message = "Internal server error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class InvalidInput(RelayError):
    """A value in the request is invalid."""

    status = 400
    default_message = "Bad request"


class AuthenticationFailed(RelayError):
    """Credentials are missing, invalid or expired."""

    status = 401
    default_message = "Unauthorized"


class PermissionDenied(RelayError):
    """The caller is authenticated but may not do this."""

    status = 403
    default_message = "Forbidden"


class NotFound(RelayError):
    """The resource does not exist or belongs to someone else."""

    status = 404
    default_message = "Not found"


class Conflict(RelayError):
    """The current state forbids the change."""

    status = 409
    default_message = "Conflict"


class LengthRequired(RelayError):
    """An upload arrived without a Content-Length."""

    status = 411
    default_message = "Length required"


class PreconditionFailed(RelayError):
    """A conditional request's precondition does not hold."""

    status = 412
    default_message = "Precondition failed"


class ServiceUnavailable(RelayError):
    """A dependency (the database) is unreachable; the client should retry shortly."""

    status = 503
    default_message = "Service unavailable"


class PayloadTooLarge(RelayError):
    """A body or batch exceeds its limit."""

    status = 413
    default_message = "Payload too large"
