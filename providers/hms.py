"""HMS Push Kit: client-credentials tokens, ``messages:send`` requests (sans-IO) and
classification of HMS result codes."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from providers.errors import InvalidNotification
from providers.fingerprint import credential_digest
from providers.h2pool import Header, Response
from providers.message import Outcome, PushMessage, Verdict

SEND_URL = "https://push-api.cloud.huawei.com"
TOKEN_URL = "https://oauth-login.cloud.huawei.com/oauth2/v3/token"  # noqa: S105 (a URL)
DATA_LIMIT = 4096
MAX_TTL_SECS = 1_296_000  # 15 days
SUCCESS = "80000000"
PARTIAL = "80100000"
ALL_INVALID = "80300007"
TOKEN_EXPIRED = "80200003"  # noqa: S105 (a result code)
_RETRYABLE = {"80100017", "81000001"}


@dataclass(frozen=True)
class HmsCredentials:
    """An app's Push Kit OAuth client (the app id is also the send path's id)."""

    app_id: str
    client_secret: str
    project_id: str | None = None

    def __repr__(self) -> str:
        return f"HmsCredentials(app_id={self.app_id!r}, ...)"

    @functools.cached_property
    def fingerprint(self) -> bytes:
        """A digest of the OAuth client (see :mod:`providers.fingerprint`)."""
        return credential_digest(self.app_id, self.client_secret, self.project_id)


def token_request(credentials: HmsCredentials) -> bytes:
    """The form body of the client-credentials token request."""
    return urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": credentials.app_id,
            "client_secret": credentials.client_secret,
        }
    ).encode("ascii")


def check_data(message: PushMessage) -> str:
    """The data as HMS carries it (a JSON string), within the 4096-byte limit."""
    data = json.dumps(dict(message.data), separators=(",", ":"))
    if len(data.encode()) > DATA_LIMIT:
        raise InvalidNotification(f"HMS data is {len(data.encode())} bytes (limit {DATA_LIMIT})")
    return data


def build_request(
    message: PushMessage, token: str, *, credentials: HmsCredentials, access_token: str, now: int
) -> tuple[bytes, list[Header], bytes]:
    """Path, headers and body of one ``messages:send`` to one token."""
    data = check_data(message)
    android: dict[str, Any] = {"urgency": "HIGH" if message.high_priority else "NORMAL"}
    if message.expires_at is not None:
        android["ttl"] = f"{max(0, min(MAX_TTL_SECS, message.expires_at - now))}s"
    if message.collapse_key:
        android["bi_tag"] = message.collapse_key
    body: dict[str, Any] = {"token": [token], "android": android}
    display = message.android_notification()
    if message.silent or message.encrypted or not (message.title or message.body or display):
        body["data"] = data
    else:
        android["notification"] = {
            **{k: v for k, v in (("title", message.title), ("body", message.body)) if v},
            **display,
            "click_action": {"type": 3},
        }
        if message.data:
            body["data"] = data
    payload = json.dumps({"validate_only": False, "message": body}, separators=(",", ":"))
    headers: list[Header] = [
        (b"authorization", b"Bearer " + access_token.encode("ascii")),
        (b"content-type", b"application/json"),
    ]
    path = (
        f"/v2/{credentials.project_id}/messages:send"
        if credentials.project_id
        else f"/v1/{credentials.app_id}/messages:send"
    )
    return path.encode(), headers, payload.encode()


def classify(response: Response, token: str) -> Outcome:
    """What an HMS answer means for the one token that was sent to."""
    status = response.status
    try:
        body = json.loads(response.body)
        code = str(body.get("code", ""))
        msg = str(body.get("msg", ""))
    except (ValueError, AttributeError):
        code, msg = "", ""
    if status == 200 and code == SUCCESS:
        return Outcome(Verdict.SENT, "sent", status, provider_id=str(body.get("requestId")))
    if code == ALL_INVALID:
        return Outcome(Verdict.UNREGISTERED, code, status)
    if code == PARTIAL:
        try:
            illegal = json.loads(msg).get("illegal_tokens", [])
        except (ValueError, AttributeError):
            illegal = []
        if token in illegal:
            return Outcome(Verdict.UNREGISTERED, code, status)
        return Outcome(Verdict.SENT, "sent", status)
    if code == TOKEN_EXPIRED:
        return Outcome(Verdict.AUTH_EXPIRED, code, status)
    retry_after = response.retry_after()
    if status in (429, 502, 503) or status >= 500 or code in _RETRYABLE:
        return Outcome(Verdict.RETRY, code or f"HTTP {status}", status, retry_after=retry_after)
    return Outcome(Verdict.FAILED, code or f"HTTP {status}", status)
