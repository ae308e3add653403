"""HS256 access tokens, exactly as the Obscura API issues and checks them.

Claims: ``sub`` (user UUID), optional ``device_id`` (device UUID, snake_case, absent
for user-scoped tokens) and ``exp`` (Unix seconds). Verification follows the
reference's library defaults: only ``HS256``, ``exp`` required and checked with 60 s of
leeway, ``sub``/``device_id`` must be UUIDs, a token carrying ``aud`` is refused (no
audience is configured), everything else is ignored.

This is a small, fixed subset of JWT, so it is implemented here rather than through a
general library: one HMAC, no algorithm negotiation, no key-length warnings for
operators who keep a short legacy secret. The tests cross-check it against PyJWT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass

DEFAULT_LEEWAY_SECS = 60
# Verified tokens kept (by SHA-256) before the cache is emptied and starts again.
VERIFIED_CACHE_SIZE = 4096
_HEADER = base64.urlsafe_b64encode(b'{"typ":"JWT","alg":"HS256"}').rstrip(b"=")


class InvalidToken(Exception):
    """The token is malformed, forged, expired or has unusable claims."""


@dataclass(frozen=True, slots=True)
class Claims:
    """The verified contents of an access token."""

    user_id: uuid.UUID
    device_id: uuid.UUID | None
    expires_at: int


def _b64url_decode(segment: bytes) -> bytes:
    if b"=" in segment:
        raise InvalidToken("padded base64url segment")
    try:
        return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("invalid base64url segment") from None


def _json_object(segment: bytes) -> dict[str, object]:
    try:
        value = json.loads(_b64url_decode(segment))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidToken("segment is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken("segment is not a JSON object")
    return value


def _uuid_claim(value: object) -> uuid.UUID:
    if not isinstance(value, str):
        raise InvalidToken("identifier claim is not a string")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidToken("identifier claim is not a UUID") from None


class JwtCodec:
    """Signs and verifies access tokens with one shared secret."""

    def __init__(self, secret: bytes, *, leeway_secs: int = DEFAULT_LEEWAY_SECS) -> None:
        if not secret:
            raise ValueError("the JWT secret must not be empty")
        self._secret = secret
        self._leeway = leeway_secs
        # A client sends the same access token with every request, and verifying it (two
        # JSON documents, base64, an HMAC) costs more than a send's own work. Only the
        # clock can change a verified token's answer, so expiry is checked on every use.
        self._verified: dict[bytes, tuple[Claims, float]] = {}

    def _sign(self, signing_input: bytes) -> bytes:
        return hmac.new(self._secret, signing_input, hashlib.sha256).digest()

    def encode(self, user_id: uuid.UUID, device_id: uuid.UUID | None, expires_at: int) -> str:
        """Issue a token for ``user_id`` (device-scoped when ``device_id`` is given)."""
        claims: dict[str, object] = {"sub": str(user_id)}
        if device_id is not None:
            claims["device_id"] = str(device_id)
        claims["exp"] = expires_at
        payload = base64.urlsafe_b64encode(
            json.dumps(claims, separators=(",", ":")).encode()
        ).rstrip(b"=")
        signing_input = _HEADER + b"." + payload
        signature = base64.urlsafe_b64encode(self._sign(signing_input)).rstrip(b"=")
        return (signing_input + b"." + signature).decode("ascii")

    def decode(self, token: str, *, now: int) -> Claims:
        """Verify ``token`` at Unix time ``now`` and return its claims."""
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidToken("token is not ASCII") from None
        key = hashlib.sha256(raw).digest()
        verified = self._verified.get(key)
        if verified is None:
            verified = self._verify(raw)
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.clear()
            self._verified[key] = verified
        claims, exp = verified
        if exp < now - self._leeway:
            raise InvalidToken("token expired")
        return claims

    def _verify(self, raw: bytes) -> tuple[Claims, float]:
        """Everything but the expiry: the claims and ``exp``."""
        parts = raw.split(b".")
        if len(parts) != 3:
            raise InvalidToken("token does not have three segments")
        header_segment, payload_segment, signature_segment = parts
        header = _json_object(header_segment)
        if header.get("alg") != "HS256":
            raise InvalidToken("algorithm not allowed")
        expected = self._sign(header_segment + b"." + payload_segment)
        if not hmac.compare_digest(expected, _b64url_decode(signature_segment)):
            raise InvalidToken("bad signature")
        claims = _json_object(payload_segment)
        exp = claims.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise InvalidToken("exp claim missing or not a number")
        if "aud" in claims:
            raise InvalidToken("unexpected audience")
        device = claims.get("device_id")
        verified = Claims(
            user_id=_uuid_claim(claims.get("sub")),
            device_id=None if device is None else _uuid_claim(device),
            expires_at=int(exp),
        )
        return verified, exp
