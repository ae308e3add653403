"""Secrets at rest (provider credentials, devices' push keys) sealed with the server key,
and end-to-end encrypted push payloads (Zulip's format).

Both are NaCl ``secretbox`` (XSalsa20-Poly1305): PyNaCl's ``SecretBox.encrypt`` writes
``nonce (24 bytes) || ciphertext + MAC`` and that is exactly what is stored, or, base64
encoded, what travels as ``encrypted_data``.
"""

from __future__ import annotations

import base64
import binascii

import nacl.exceptions
import nacl.secret
import nacl.utils

KEY_BYTES = nacl.secret.SecretBox.KEY_SIZE
PUSH_KEY_PREFIX = 0x31


class SealingError(Exception):
    """A sealed value does not open with this key (wrong key, or tampered)."""


class Vault:
    """Seals and opens secrets with the server key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"the server key is {KEY_BYTES} bytes")
        self._box = nacl.secret.SecretBox(key)

    def seal(self, plaintext: bytes) -> bytes:
        """``nonce || ciphertext`` of ``plaintext``."""
        return bytes(self._box.encrypt(plaintext))

    def open(self, sealed: bytes) -> bytes:
        """The plaintext of a value made by :meth:`seal`."""
        try:
            return bytes(self._box.decrypt(sealed))
        except (nacl.exceptions.CryptoError, ValueError, TypeError) as error:
            raise SealingError("sealed value does not open with the server key") from error


def new_key() -> bytes:
    """A fresh random server key."""
    return nacl.utils.random(KEY_BYTES)


def parse_key(text: str) -> bytes:
    """Decode a base64 server key; ``ValueError`` unless it is 32 bytes."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except binascii.Error as error:
        raise ValueError("not base64") from error
    if len(key) != KEY_BYTES:
        raise ValueError(f"must decode to {KEY_BYTES} bytes, got {len(key)}")
    return key


class InvalidPushKey(ValueError):
    """A push key that is not base64 of ``0x31`` followed by 32 bytes."""


def parse_push_key(text: str) -> bytes:
    """The 32 secret bytes of a push key (strict base64 of ``0x31 || key``)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidPushKey("push key is not valid base64") from error
    if base64.b64encode(raw).decode("ascii") != text:
        # Strict: no extra padding or non-canonical trailing bits.
        raise InvalidPushKey("push key is not canonical base64")
    if len(raw) != 1 + KEY_BYTES:
        raise InvalidPushKey(f"push key must be {1 + KEY_BYTES} bytes")
    if raw[0] != PUSH_KEY_PREFIX:
        raise InvalidPushKey("push key must start with the byte 0x31")
    return raw[1:]


def encrypt_push_payload(key: bytes, plaintext: bytes) -> str:
    """``encrypted_data``: base64 of ``nonce || secretbox(plaintext)``."""
    return base64.b64encode(nacl.secret.SecretBox(key).encrypt(plaintext)).decode("ascii")
