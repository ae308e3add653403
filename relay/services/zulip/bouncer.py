"""The bouncer's half of Zulip E2EE registration, sans-IO: open the sealed
``PushRegistration`` with one of the bouncer's key pairs and validate it.

Keys form a map ``public_b64 -> private_b64`` (X25519, 32 raw bytes, standard Base64) as
in Zulip's ``push_registration_encryption_keys`` secret; several may be valid at once so
an app release with a new baked-in key can roll out. Freshness is one-sided as in Zulip:
a registration older than :data:`MAX_AGE_SECS` is refused, a future timestamp is not.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass

import nacl.exceptions
import nacl.public

from relay.services.zulip.errors import ZulipError, bad_request

MAX_AGE_SECS = 86400
MAX_TOKEN_CHARS = 4096
_INVALID_REGISTRATION = "Invalid encrypted_push_registration"


@dataclass(frozen=True)
class PushRegistration:
    """What the client sealed for the bouncer."""

    token: str
    token_kind: str
    ios_app_id: str | None
    timestamp: int


def generate_key_pair() -> tuple[str, str]:
    """A new ``(public_b64, private_b64)`` pair."""
    private = nacl.public.PrivateKey.generate()
    return (
        base64.b64encode(bytes(private.public_key)).decode(),
        base64.b64encode(bytes(private)).decode(),
    )


def parse_key_map(text: str) -> dict[str, str]:
    """``RELAY_PUSH_REGISTRATION_ENCRYPTION_KEYS``: a JSON object of Base64 key pairs
    whose private halves match their public ones; ValueError otherwise."""
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError("expected a JSON object {public_b64: private_b64}") from None
    if not isinstance(loaded, dict):
        raise ValueError("expected a JSON object {public_b64: private_b64}")
    for public, private in loaded.items():
        if not isinstance(private, str) or public_of(private) != public:
            raise ValueError(f"the private key of {public!r} does not match it")
    return dict(loaded)


def public_of(private_b64: str) -> str | None:
    """The public half of a Base64 private key, None if it is not one."""
    try:
        raw = base64.b64decode(private_b64, validate=True)
        key = nacl.public.PrivateKey(raw)
    except (binascii.Error, ValueError, nacl.exceptions.CryptoError, TypeError):
        return None
    return base64.b64encode(bytes(key.public_key)).decode()


def open_registration(
    keys: Mapping[str, str], bouncer_public_key: str, sealed_b64: str, *, now: int
) -> PushRegistration:
    """Decrypt and validate; :class:`ZulipError` with Zulip's code otherwise."""
    private_b64 = keys.get(bouncer_public_key)
    if private_b64 is None:
        raise ZulipError("INVALID_BOUNCER_PUBLIC_KEY", "Invalid bouncer_public_key")
    try:
        box = nacl.public.SealedBox(nacl.public.PrivateKey(base64.b64decode(private_b64)))
        plaintext = box.decrypt(base64.b64decode(sealed_b64, validate=True))
        fields = json.loads(plaintext)
    except (binascii.Error, ValueError, nacl.exceptions.CryptoError, TypeError):
        raise bad_request(_INVALID_REGISTRATION) from None
    registration = _validated(fields)
    if now - registration.timestamp > MAX_AGE_SECS:
        raise ZulipError("REQUEST_EXPIRED", "Request expired")
    return registration


def _validated(fields: object) -> PushRegistration:
    if not isinstance(fields, dict):
        raise bad_request(_INVALID_REGISTRATION)
    token, kind = fields.get("token"), fields.get("token_kind")
    ios_app_id, timestamp = fields.get("ios_app_id"), fields.get("timestamp")
    valid = (
        isinstance(token, str)
        and 0 < len(token) <= MAX_TOKEN_CHARS
        and "\x00" not in token
        and kind in ("apns", "fcm")
        and isinstance(timestamp, int)
        and not isinstance(timestamp, bool)
    )
    if valid and kind == "apns":
        valid = isinstance(ios_app_id, str) and bool(ios_app_id) and _is_hex(str(token))
    elif valid:
        valid = ios_app_id is None
    if not valid:
        raise bad_request(_INVALID_REGISTRATION)
    return PushRegistration(str(token), str(kind), ios_app_id, int(str(timestamp)))


def _is_hex(token: str) -> bool:
    try:
        bytes.fromhex(token)
    except ValueError:
        return False
    return True
