"""FCM HTTP v1: service-account assertions, ``messages:send`` requests (sans-IO) and
classification of Google's error answers.

Invalidation follows push-reference §0.5: only ``UNREGISTERED`` and an
``INVALID_ARGUMENT`` whose field violation is ``message.token`` say the token is dead; any
other ``INVALID_ARGUMENT`` is our payload's fault. ``SENDER_ID_MISMATCH`` (token of
another project) is suspect, which the circuit breaker guards.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from providers import jose
from providers.errors import CredentialError, InvalidNotification
from providers.fingerprint import credential_digest
from providers.h2pool import Header, Response
from providers.message import Outcome, PushMessage, Verdict

SEND_URL = "https://fcm.googleapis.com"
TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DATA_LIMIT = 4096
MAX_TTL_SECS = 2_419_200
ASSERTION_LIFETIME_SECS = 3600
_RESERVED_KEYS = ("from", "notification", "message_type")


@dataclass(frozen=True)
class ServiceAccount:
    """The fields of a service-account JSON file that signing needs."""

    project_id: str
    client_email: str
    private_key_pem: bytes
    private_key_id: str | None = None

    def __repr__(self) -> str:
        return f"ServiceAccount(project_id={self.project_id!r}, client_email={self.client_email!r})"

    @functools.cached_property
    def fingerprint(self) -> bytes:
        """A digest of the whole account (see :mod:`providers.fingerprint`)."""
        return credential_digest(
            self.project_id, self.client_email, self.private_key_pem, self.private_key_id
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ServiceAccount:
        """Parse a service-account file; :class:`CredentialError` if unusable."""
        try:
            data = json.loads(text)
            account = cls(
                project_id=str(data["project_id"]),
                client_email=str(data["client_email"]),
                private_key_pem=str(data["private_key"]).encode(),
                private_key_id=data.get("private_key_id"),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise CredentialError("not a service-account JSON file") from error
        if not account.project_id or not account.client_email:
            raise CredentialError("the service account has no project_id or client_email")
        jose.load_private_key(account.private_key_pem)
        return account


def assertion(account: ServiceAccount, *, token_url: str, now: int) -> str:
    """The RS256 JWT that the token endpoint exchanges for an access token."""
    header: dict[str, Any] = {"typ": "JWT"}
    if account.private_key_id:
        header["kid"] = account.private_key_id
    claims = {
        "iss": account.client_email,
        "scope": SCOPE,
        "aud": token_url,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_SECS,
    }
    return jose.sign(header, claims, jose.load_private_key(account.private_key_pem))


def token_request(account: ServiceAccount, *, token_url: str, now: int) -> bytes:
    """The form body of the token request."""
    return urlencode(
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": assertion(account, token_url=token_url, now=now),
        }
    ).encode("ascii")


def check_data(data: dict[str, str]) -> None:
    """FCM's limits on data messages: string values, no reserved keys, 4096 bytes."""
    size = 0
    for key, value in data.items():
        if not isinstance(value, str):
            raise InvalidNotification(f"FCM data value of {key!r} is not a string")
        if key in _RESERVED_KEYS or key.startswith(("google", "gcm")):
            raise InvalidNotification(f"FCM data key {key!r} is reserved")
        size += len(key.encode()) + len(value.encode())
    if size > DATA_LIMIT:
        raise InvalidNotification(f"FCM data is {size} bytes (limit {DATA_LIMIT})")


def build_message(message: PushMessage, token: str, *, now: int) -> dict[str, Any]:
    """The ``message`` object of ``messages:send``."""
    data = dict(message.data)
    check_data(data)
    android: dict[str, Any] = {"priority": "HIGH" if message.high_priority else "NORMAL"}
    if message.expires_at is not None:
        android["ttl"] = f"{max(0, min(MAX_TTL_SECS, message.expires_at - now))}s"
    if message.collapse_key:
        android["collapse_key"] = message.collapse_key
    aps: dict[str, Any] = {"content-available": 1} if message.silent else {}
    if message.encrypted and not message.silent:
        aps["alert"] = {"title": "New notification"}
        aps["mutable-content"] = 1
    elif message.mutable_content:
        aps["mutable-content"] = 1
    apns_headers = {
        "apns-priority": "10" if message.high_priority and not message.silent else "5",
        "apns-push-type": "background" if message.silent else "alert",
    }
    if message.collapse_key:
        apns_headers["apns-collapse-id"] = message.collapse_key
    body: dict[str, Any] = {
        "token": token,
        "data": data,
        "android": android,
        "apns": {"headers": apns_headers, "payload": {"aps": aps}},
    }
    if not message.silent and not message.encrypted:
        if message.title or message.body:
            body["notification"] = {
                k: v for k, v in (("title", message.title), ("body", message.body)) if v
            }
        display = message.android_notification()
        if display:
            android["notification"] = display
    return body


def build_request(
    message: PushMessage, token: str, *, project_id: str, access_token: str, now: int
) -> tuple[bytes, list[Header], bytes]:
    """Path, headers and body of one ``messages:send``."""
    body = json.dumps(
        {"message": build_message(message, token, now=now)}, separators=(",", ":")
    ).encode()
    headers: list[Header] = [
        (b"authorization", b"Bearer " + access_token.encode("ascii")),
        (b"content-type", b"application/json"),
    ]
    return f"/v1/projects/{project_id}/messages:send".encode(), headers, body


def _error(response: Response) -> tuple[str, str | None, list[str]]:
    try:
        error = json.loads(response.body)["error"]
        status = str(error.get("status", ""))
        fcm_code: str | None = None
        fields: list[str] = []
        for detail in error.get("details", []):
            if "errorCode" in detail:
                fcm_code = str(detail["errorCode"])
            for violation in detail.get("fieldViolations", []):
                fields.append(str(violation.get("field", "")))
        return status, fcm_code, fields
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", None, []


def classify(response: Response) -> Outcome:
    """What an FCM answer means."""
    status = response.status
    if status == 200:
        try:
            name = str(json.loads(response.body).get("name"))
        except (ValueError, AttributeError):
            name = None
        return Outcome(Verdict.SENT, "sent", status, provider_id=name)
    google_status, fcm_code, fields = _error(response)
    reason = fcm_code or google_status or f"HTTP {status}"
    if fcm_code == "UNREGISTERED" or (status == 404 and google_status == "NOT_FOUND"):
        return Outcome(Verdict.UNREGISTERED, "UNREGISTERED", status)
    if status == 400 and "message.token" in fields:
        return Outcome(Verdict.UNREGISTERED, "INVALID_ARGUMENT message.token", status)
    if fcm_code == "SENDER_ID_MISMATCH":
        return Outcome(Verdict.TOKEN_SUSPECT, reason, status)
    if status == 401:
        return Outcome(Verdict.AUTH_EXPIRED, reason, status)
    if status == 429 or status >= 500:
        return Outcome(Verdict.RETRY, reason, status, retry_after=response.retry_after())
    return Outcome(Verdict.FAILED, reason, status)
