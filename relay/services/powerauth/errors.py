"""PowerAuth errors: the ``code`` and message of ``{"status":"ERROR","responseObject":...}``.

The reference maps every validation and business error to 400 ``ERROR_GENERIC``, bean
validation to 400 ``ERROR_REQUEST`` with ``violations``, a missing inbox message or app to
their own codes; the API layer turns these into the body and status.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.errors import RelayError


@dataclass(frozen=True)
class Violation:
    """One failed field rule of an ``ERROR_REQUEST``."""

    field_name: str
    invalid_value: object
    hint: str


class PowerAuthError(RelayError):
    """A PowerAuth-convention error."""

    status = 400
    code = "ERROR_GENERIC"

    def __init__(self, message: str, *, violations: tuple[Violation, ...] = ()) -> None:
        super().__init__(message)
        self.violations = violations


class InvalidRequest(PowerAuthError):
    """Bean validation failed (``ERROR_REQUEST``)."""

    code = "ERROR_REQUEST"

    def __init__(self, violations: tuple[Violation, ...]) -> None:
        super().__init__("Invalid method parameter value", violations=violations)


class AppNotFound(PowerAuthError):
    """``ERROR_APP_NOT_FOUND``."""

    code = "ERROR_APP_NOT_FOUND"


class MessageNotFound(PowerAuthError):
    """``ERROR_MESSAGE_NOT_FOUND``."""

    code = "ERROR_MESSAGE_NOT_FOUND"


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
