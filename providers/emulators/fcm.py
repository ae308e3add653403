"""An FCM HTTP v1 emulator: the OAuth2 token endpoint and ``messages:send``.

The token endpoint takes the RS256 JWT assertion of a service account it knows (signature,
``iss``, ``aud``, ``scope``, at most one hour of validity) and hands out access tokens;
``messages:send`` requires one, for the service account's own project, and validates the
message like FCM does (one target, string data values, reserved keys, 4096 bytes of
data). Errors use Google's ``{"error": {code, message, status, details}}`` shape.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from providers import jose
from providers.emulators.base import EmulatorBase, Received, json_reply, retry_after
from providers.emulators.faults import FaultKind, FaultPlan
from providers.emulators.oauth import TokenIssuer, form
from providers.emulators.server import Reply, Request

TOKEN_PATH = "/token"  # noqa: S105 (a path)
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
_DATA_LIMIT = 4096
_RESERVED = ("from", "notification", "message_type")


@dataclass(frozen=True)
class ServiceAccount:
    """A service account the token endpoint trusts."""

    client_email: str
    project_id: str
    public_key: rsa.RSAPublicKey


def google_error(
    status: int,
    code: str,
    message: str,
    *,
    fcm_code: str | None = None,
    field: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Reply:
    """An error in Google's JSON error format."""
    details: list[dict[str, Any]] = []
    if fcm_code is not None:
        details.append({"@type": _FCM_ERROR, "errorCode": fcm_code})
    if field is not None:
        details.append(
            {"@type": _BAD_REQUEST, "fieldViolations": [{"field": field, "description": message}]}
        )
    body = {"error": {"code": status, "message": message, "status": code, "details": details}}
    return json_reply(status, body, headers)


def _invalid(message: str, *, field: str | None = None, fcm_code: str | None = None) -> Reply:
    return google_error(400, "INVALID_ARGUMENT", message, fcm_code=fcm_code, field=field)


class FcmEmulator(EmulatorBase):
    """See the module docstring."""

    def __init__(
        self,
        accounts: list[ServiceAccount],
        *,
        audience: str,
        faults: FaultPlan | None = None,
        token_lifetime_secs: int = 3600,
    ) -> None:
        super().__init__(faults)
        self._accounts = {account.client_email: account for account in accounts}
        self.audience = audience
        self.tokens = TokenIssuer(token_lifetime_secs)
        self._sent = 0

    def answer(self, request: Request) -> Reply:
        """The token endpoint or ``messages:send``."""
        if request.method != "POST":
            return google_error(405, "METHOD_NOT_ALLOWED", "Method not allowed")
        if request.path == TOKEN_PATH:
            return self._token(request)
        prefix, _, rest = request.path.partition("/v1/projects/")
        if prefix or not rest.endswith("/messages:send"):
            return google_error(404, "NOT_FOUND", "Not found")
        return self._send(rest.removesuffix("/messages:send"), request)

    def _token(self, request: Request) -> Reply:
        fields = form(request)
        if fields.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return json_reply(400, {"error": "unsupported_grant_type"})
        assertion = fields.get("assertion", "")
        try:
            unverified = json.loads(jose.b64url_decode(assertion.split(".")[1]))
            account = self._accounts.get(str(unverified.get("iss")))
            if account is None:
                raise jose.InvalidJws("unknown service account")
            claims = jose.verify(assertion, account.public_key)
        except (jose.InvalidJws, IndexError, ValueError, AttributeError):
            return json_reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT"})
        now = time.time()
        issued, expires = claims.get("iat"), claims.get("exp")
        if (
            claims.get("aud") != self.audience
            or SCOPE not in str(claims.get("scope", "")).split()
            or not isinstance(issued, int)
            or not isinstance(expires, int)
            or expires - issued > 3600
            or expires < now
        ):
            return json_reply(
                400, {"error": "invalid_grant", "error_description": "Invalid JWT claims"}
            )
        token, lifetime = self.tokens.issue(account.project_id)
        return json_reply(
            200, {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}
        )

    def _send(self, project: str, request: Request) -> Reply:
        subject = self.tokens.subject(request.headers.get("authorization"))
        if subject is None:
            return google_error(
                401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
            )
        if subject != project:
            return google_error(403, "PERMISSION_DENIED", "Permission denied on the project.")
        try:
            body = json.loads(request.body)
            message = body["message"]
            if not isinstance(message, dict):
                raise TypeError("message must be an object")
        except (ValueError, KeyError, TypeError):
            return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        invalid = self._validate(message)
        if invalid is not None:
            return invalid
        token = str(message["token"])
        return self.inject(
            token,
            lambda: self._accepted(project, token, request, message),
            lambda fault: self._fault_reply(fault.kind, retry_after(fault)),
        )

    def _accepted(
        self,
        project: str,
        token: str,
        request: Request,
        message: dict[str, Any],
    ) -> Reply:
        if self.record:
            self.received.append(Received(token, dict(request.headers), message, request.peer))
        self._sent += 1
        body = json.dumps({"name": f"projects/{project}/messages/0:{self._sent}"}).encode()
        return Reply(200, (("content-type", "application/json"),), body)

    def _validate(self, message: dict[str, Any]) -> Reply | None:
        targets = [key for key in ("token", "topic", "condition") if key in message]
        if len(targets) != 1:
            return _invalid("Exactly one of token, topic or condition is required.")
        if "token" not in message or not isinstance(message["token"], str):
            return _invalid("token must be a string", field="message.token")
        if not message["token"]:
            return _invalid(
                "The registration token is not a valid FCM registration token",
                field="message.token",
                fcm_code="INVALID_ARGUMENT",
            )
        data = message.get("data", {})
        if not isinstance(data, dict):
            return _invalid("data must be a map", field="message.data")
        size = 0
        for key, value in data.items():
            if not isinstance(value, str):
                return _invalid("data values must be strings", field=f"message.data[{key}]")
            if key in _RESERVED or key.startswith(("google", "gcm")):
                return _invalid(f"Invalid data key: {key}", field=f"message.data[{key}]")
            size += len(key.encode()) + len(value.encode())
        if size > _DATA_LIMIT:
            return _invalid("Android message is too big", fcm_code="INVALID_ARGUMENT")
        return None

    def _fault_reply(self, kind: FaultKind, extra: tuple[tuple[str, str], ...]) -> Reply:
        if kind is FaultKind.UNREGISTERED:
            return google_error(
                404, "NOT_FOUND", "Requested entity was not found.", fcm_code="UNREGISTERED"
            )
        if kind is FaultKind.BAD_TOKEN:
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "The registration token is not a valid FCM registration token",
                fcm_code="INVALID_ARGUMENT",
                field="message.token",
            )
        if kind is FaultKind.SENDER_MISMATCH:
            return google_error(
                403, "PERMISSION_DENIED", "SenderId mismatch", fcm_code="SENDER_ID_MISMATCH"
            )
        if kind is FaultKind.RATE_LIMITED:
            return google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded.",
                fcm_code="QUOTA_EXCEEDED",
                headers=extra,
            )
        if kind is FaultKind.AUTH_EXPIRED:
            self.tokens.expire_all()
            return google_error(
                401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
            )
        if kind is FaultKind.SERVER_ERROR:
            return google_error(500, "INTERNAL", "Internal error encountered.", fcm_code="INTERNAL")
        return google_error(
            503,
            "UNAVAILABLE",
            "The service is currently unavailable.",
            fcm_code="UNAVAILABLE",
            headers=extra,
        )
