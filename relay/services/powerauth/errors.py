"""PowerAuth errors: the ``code`` and message of ``{"status":"ERROR","responseObject":...}``.

The reference maps every validation and business error to 400 ``ERROR_GENERIC``, bean
validation to 400 ``ERROR_REQUEST`` with ``violations``, a missing inbox message or app to
their own codes; :mod:`relay.api.powerauth.errors` turns these into the body and status
and holds the errors only the API raises (authentication, content type, storage).
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
