"""An APNs provider API emulator (HTTP/2, ``POST /3/device/<token>``).

It checks what Apple checks: the ES256 provider token against the configured keys
(``kid``, ``iss`` = team, ``iat`` younger than an hour), the topic, the push type and
priority, the device token's shape and the payload size (4096 bytes, 5120 for VoIP), and
answers with Apple's status codes and ``{"reason"}`` bodies, 410 with a ``timestamp``.
"""

from __future__ import annotations

import json
import string
import time
import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from providers import jose
from providers.emulators.base import EmulatorBase, Received, json_reply, retry_after
from providers.emulators.faults import FaultKind, FaultPlan
from providers.emulators.server import Reply, Request

_PUSH_TYPES = {
    "alert",
    "background",
    "voip",
    "location",
    "complication",
    "fileprovider",
    "mdm",
    "liveactivity",
    "pushtotalk",
    "controls",
    "widgets",
}
_TOKEN_AGE_LIMIT_SECS = 3600
_HEX = set(string.hexdigits)


@dataclass(frozen=True)
class ApnsKey:
    """A provider signing key the emulator trusts."""

    key_id: str
    team_id: str
    public_key: ec.EllipticCurvePublicKey


def _reject(status: int, reason: str, **extra: object) -> Reply:
    return json_reply(status, {"reason": reason, **extra})


class ApnsEmulator(EmulatorBase):
    """See the module docstring."""

    def __init__(
        self,
        keys: list[ApnsKey],
        *,
        topics: set[str] | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        super().__init__(faults)
        self._keys = {key.key_id: key for key in keys}
        self._topics = topics
        self._verified: dict[str, tuple[str, int]] = {}

    def answer(self, request: Request) -> Reply:
        """Apple's answer to one notification request."""
        if request.method != "POST":
            return _reject(405, "MethodNotAllowed")
        if not request.path.startswith("/3/device/"):
            return _reject(404, "BadPath")
        token = request.path[len("/3/device/") :]
        headers = request.headers
        auth_error = self._check_provider_token(headers.get("authorization"))
        if auth_error is not None:
            return auth_error
        topic = headers.get("apns-topic")
        if not topic:
            return _reject(400, "MissingTopic")
        if self._topics is not None and topic.removesuffix(".voip") not in self._topics:
            return _reject(400, "TopicDisallowed")
        push_type = headers.get("apns-push-type", "alert")
        if push_type not in _PUSH_TYPES:
            return _reject(400, "InvalidPushType")
        if headers.get("apns-priority", "10") not in ("1", "5", "10"):
            return _reject(400, "BadPriority")
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return _reject(400, "BadCollapseId")
        expiration = headers.get("apns-expiration", "0")
        if not expiration.isdigit():
            return _reject(400, "BadExpirationDate")
        if not token:
            return _reject(400, "MissingDeviceToken")
        if len(token) % 2 or len(token) < 64 or not set(token) <= _HEX:
            return _reject(400, "BadDeviceToken")
        limit = 5120 if push_type == "voip" else 4096
        if not request.body:
            return _reject(400, "PayloadEmpty")
        if len(request.body) > limit:
            return _reject(413, "PayloadTooLarge")
        return self.inject(
            token,
            lambda: self._accept(token, request),
            lambda fault: self._fault_reply(fault.kind, fault.timestamp_ms, retry_after(fault)),
        )

    def _accept(self, token: str, request: Request) -> Reply:
        try:
            payload = json.loads(request.body)
        except ValueError:
            return _reject(400, "BadPayload")
        if self.record:
            self.received.append(Received(token, dict(request.headers), payload, request.peer))
        apns_id = request.headers.get("apns-id") or str(uuid.uuid4())
        return Reply(200, (("apns-id", apns_id),))

    def _fault_reply(
        self, kind: FaultKind, timestamp_ms: int | None, extra: tuple[tuple[str, str], ...]
    ) -> Reply:
        if kind is FaultKind.UNREGISTERED:
            stamp = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
            return _reject(410, "Unregistered", timestamp=stamp)
        if kind is FaultKind.BAD_TOKEN:
            return _reject(400, "BadDeviceToken")
        if kind is FaultKind.SENDER_MISMATCH:
            return _reject(400, "DeviceTokenNotForTopic")
        if kind is FaultKind.RATE_LIMITED:
            return json_reply(429, {"reason": "TooManyRequests"}, extra)
        if kind is FaultKind.AUTH_EXPIRED:
            return _reject(403, "ExpiredProviderToken")
        if kind is FaultKind.SERVER_ERROR:
            return _reject(500, "InternalServerError")
        return json_reply(503, {"reason": "ServiceUnavailable"}, extra)

    def _check_provider_token(self, authorization: str | None) -> Reply | None:
        if not authorization or not authorization.lower().startswith("bearer "):
            return _reject(403, "MissingProviderToken")
        token = authorization[len("bearer ") :]
        verified = self._verified.get(token)
        if verified is None:
            try:
                header = jose.unverified_header(token)
                key = self._keys.get(str(header.get("kid")))
                if key is None:
                    return _reject(403, "InvalidProviderToken")
                claims = jose.verify(token, key.public_key)
            except jose.InvalidJws:
                return _reject(403, "InvalidProviderToken")
            issued = claims.get("iat")
            if claims.get("iss") != key.team_id or not isinstance(issued, int):
                return _reject(403, "InvalidProviderToken")
            verified = (key.team_id, issued)
            self._verified[token] = verified
        if time.time() - verified[1] > _TOKEN_AGE_LIMIT_SECS:
            return _reject(403, "ExpiredProviderToken")
        return None
