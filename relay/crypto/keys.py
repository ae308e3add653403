"""Strict decoding of the public keys and signatures clients send as JSON strings.

Keys are standard base64 (RFC 4648 alphabet, canonical ``=`` padding, no whitespace),
decoding to 33 bytes: the DJB type byte ``0x05`` followed by a Curve25519 ``u``.
Signatures decode to exactly 64 bytes. The error messages are the API's 400 texts.
"""

from __future__ import annotations

import base64
import binascii

DJB_KEY_TYPE = 0x05
PUBLIC_KEY_LENGTH = 33
SIGNATURE_LENGTH = 64


class KeyFormatError(ValueError):
    """A key or signature is not in the wire format; ``str()`` is the client message."""


def encode_base64(data: bytes) -> str:
    """Standard base64 with padding, the form every key is returned in."""
    return base64.b64encode(data).decode("ascii")


def decode_base64_strict(text: str) -> bytes:
    """Decode canonical standard base64, rejecting anything a re-encode would change.

    Python's decoder tolerates non-zero trailing bits ("QR==" for "QQ=="); comparing
    against the re-encoded form rejects those, wrong padding and every stray character.
    """
    try:
        raw = text.encode("ascii")
        decoded = base64.b64decode(raw, validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise KeyFormatError("Invalid base64 encoding") from None
    if base64.b64encode(decoded) != raw:
        raise KeyFormatError("Invalid base64 encoding (non-canonical)")
    return decoded


def parse_public_key(text: str) -> bytes:
    """Decode a 33-byte ``0x05``-prefixed public key."""
    key = decode_base64_strict(text)
    if len(key) != PUBLIC_KEY_LENGTH:
        raise KeyFormatError(f"Invalid key length: {len(key)} (expected 33 bytes with 0x05 prefix)")
    if key[0] != DJB_KEY_TYPE:
        raise KeyFormatError("Invalid key prefix (expected 0x05)")
    return key


def parse_signature(text: str) -> bytes:
    """Decode a 64-byte signature."""
    signature = decode_base64_strict(text)
    if len(signature) != SIGNATURE_LENGTH:
        raise KeyFormatError(f"Invalid signature length: {len(signature)} (expected 64)")
    return signature
