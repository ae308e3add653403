"""APNs: building requests (sans-IO), classifying answers, and the provider token.

Request: ``POST /3/device/<token>`` with ``apns-topic``, ``apns-push-type``,
``apns-priority``, ``apns-expiration``, ``apns-collapse-id`` and a bearer ES256 token
(``kid``, ``iss``, ``iat``) that is reused per key for 50 minutes: Apple refuses tokens
older than an hour and throttles teams that mint them more often than every 20 minutes.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from providers import jose
from providers.errors import InvalidNotification
from providers.fingerprint import credential_digest
from providers.h2pool import Header, Response
from providers.message import Environment, Outcome, PushMessage, Verdict

PAYLOAD_LIMIT = 4096
VOIP_PAYLOAD_LIMIT = 5120
COLLAPSE_ID_LIMIT = 64
TOKEN_REUSE_SECS = 50 * 60
ENCRYPTED_PLACEHOLDER = "New notification"
PRODUCTION_URL = "https://api.push.apple.com"
DEVELOPMENT_URL = "https://api.sandbox.push.apple.com"

# Reasons that mean the token itself is bad. BadDeviceToken is also what a sandbox token
# gets on the production host, so a misconfigured app sees it for every token: these go
# through the circuit breaker instead of straight to deletion.
_SUSPECT = {"BadDeviceToken", "DeviceTokenNotForTopic"}
_AUTH_EXPIRED = {"ExpiredProviderToken"}


@dataclass(frozen=True)
class ApnsCredentials:
    """A token-auth signing key and the app it sends for."""

    key_pem: bytes
    key_id: str
    team_id: str
    bundle_id: str
    environment: Environment = Environment.PRODUCTION

    def __repr__(self) -> str:
        return f"ApnsCredentials(key_id={self.key_id!r}, team_id={self.team_id!r}, ...)"

    @functools.cached_property
    def fingerprint(self) -> bytes:
        """A digest of what signs the provider token (see :mod:`providers.fingerprint`)."""
        return credential_digest(self.key_pem, self.key_id, self.team_id)


class ProviderTokenCache:
    """One ES256 provider token per (team, key), reused for :data:`TOKEN_REUSE_SECS`
    while the key it was signed with is the credentials' key."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, str], tuple[bytes, str, float]] = {}
        self.minted = 0

    def token(self, credentials: ApnsCredentials) -> str:
        """The current token for the credentials' key, minted when missing, old, or
        signed with other key material (a replaced ``.p8`` under the same key id)."""
        key = (credentials.team_id, credentials.key_id)
        now = self._clock()
        cached = self._tokens.get(key)
        signed_by = credentials.fingerprint
        if cached is not None and cached[0] == signed_by and now - cached[2] < TOKEN_REUSE_SECS:
            return cached[1]
        token = jose.sign(
            {"kid": credentials.key_id},
            {"iss": credentials.team_id, "iat": int(now)},
            jose.load_private_key(credentials.key_pem),
        )
        self._tokens[key] = (signed_by, token, now)
        self.minted += 1
        return token

    def invalidate(self, credentials: ApnsCredentials) -> None:
        """Forget the token (Apple said it expired)."""
        self._tokens.pop((credentials.team_id, credentials.key_id), None)


def payload(message: PushMessage) -> dict[str, object]:
    """The JSON payload: ``aps`` plus the custom data at the top level."""
    aps: dict[str, object] = {}
    if message.silent:
        aps["content-available"] = 1
    elif message.encrypted:
        aps["alert"] = {"title": ENCRYPTED_PLACEHOLDER}
        aps["mutable-content"] = 1
    else:
        alert: dict[str, object] = {
            k: v
            for k, v in (
                ("title", message.title),
                ("body", message.body),
                ("title-loc-key", message.title_loc_key),
                ("title-loc-args", list(message.title_loc_args)),
                ("loc-key", message.body_loc_key),
                ("loc-args", list(message.body_loc_args)),
            )
            if v
        }
        if alert:
            aps["alert"] = alert
        if message.sound:
            aps["sound"] = message.sound
    if message.badge is not None:
        aps["badge"] = message.badge
    if message.category:
        aps["category"] = message.category
    if message.thread_id:
        aps["thread-id"] = message.thread_id
    if message.mutable_content:
        aps["mutable-content"] = 1
    return {**message.data, "aps": aps}


def build_request(
    message: PushMessage, device_token: str, *, topic: str, provider_token: str
) -> tuple[bytes, list[Header], bytes]:
    """Path, headers and body of one notification; :class:`InvalidNotification` if too big."""
    if not device_token or not all(c in "0123456789abcdefABCDEF" for c in device_token):
        raise InvalidNotification("an APNs device token is hexadecimal")
    push_type = message.push_type or ("background" if message.silent else "alert")
    # Background pushes must use priority 5; Apple rejects 10 for them.
    priority = b"10" if message.high_priority and push_type != "background" else b"5"
    body = json.dumps(payload(message), separators=(",", ":"), ensure_ascii=False).encode()
    limit = VOIP_PAYLOAD_LIMIT if push_type == "voip" else PAYLOAD_LIMIT
    if len(body) > limit:
        raise InvalidNotification(f"APNs payload is {len(body)} bytes (limit {limit})")
    if push_type == "voip" and not topic.endswith(".voip"):
        topic += ".voip"
    headers: list[Header] = [
        (b"authorization", b"bearer " + provider_token.encode("ascii")),
        (b"apns-topic", topic.encode()),
        (b"apns-push-type", push_type.encode()),
        (b"apns-priority", priority),
        (b"apns-expiration", str(message.expires_at or 0).encode()),
    ]
    if message.collapse_key:
        collapse = message.collapse_key.encode()
        if len(collapse) > COLLAPSE_ID_LIMIT:
            raise InvalidNotification(f"apns-collapse-id is longer than {COLLAPSE_ID_LIMIT} bytes")
        headers.append((b"apns-collapse-id", collapse))
    return b"/3/device/" + device_token.encode("ascii"), headers, body


def classify(response: Response) -> Outcome:
    """What an APNs answer means."""
    status = response.status
    if status == 200:
        apns_id = response.header(b"apns-id")
        return Outcome(
            Verdict.SENT, "sent", status, provider_id=apns_id.decode() if apns_id else None
        )
    reason = f"HTTP {status}"
    timestamp: int | None = None
    try:
        body = json.loads(response.body) if response.body else {}
        reason = str(body.get("reason", reason))
        if isinstance(body.get("timestamp"), int):
            timestamp = body["timestamp"]
    except (ValueError, AttributeError):
        pass
    if status == 410 or reason in ("Unregistered", "ExpiredToken"):
        return Outcome(Verdict.UNREGISTERED, reason, status, unregistered_at_ms=timestamp)
    if reason in _SUSPECT:
        return Outcome(Verdict.TOKEN_SUSPECT, reason, status)
    if reason in _AUTH_EXPIRED:
        return Outcome(Verdict.AUTH_EXPIRED, reason, status)
    if status == 429 or status >= 500:
        return Outcome(Verdict.RETRY, reason, status, retry_after=response.retry_after())
    return Outcome(Verdict.FAILED, reason, status)
