"""XEd25519 signatures over Curve25519 (Montgomery) identity keys, as Signal uses them.

A Signal identity key is a Montgomery ``u`` coordinate; XEdDSA signs with the
birationally equivalent Edwards point. Two signer conventions exist and both must verify:

* the **XEdDSA specification**: the signer negates its scalar when needed so that the
  Edwards public key has sign bit 0, and ``sig[63]``'s top bit is always clear;
* **libsignal**: the Edwards key keeps its natural sign, and the signer stores that sign
  bit in the top bit of ``sig[63]`` (always clear in a valid Ed25519 ``s``).

Verification therefore clears that bit and accepts a standard Ed25519 verification
against the Edwards key with *either* sign. Signed pre-key signatures are checked over
the 33-byte serialised key first and over the bare 32-byte ``u`` second, because clients
disagree on which one they sign.

Signing is here too: the client SDK and the tests need it to produce real signatures.
"""

from __future__ import annotations

import hashlib
import os

from nacl import bindings
from nacl.exceptions import BadSignatureError, CryptoError

_P = 2**255 - 19
_MASK_255 = (1 << 255) - 1
_SIGN_BIT = 0x80
# Domain separator of the XEdDSA nonce hash: 0xFE followed by 31 0xFF bytes.
_NONCE_PREFIX = b"\xfe" + b"\xff" * 31


def _edwards_y_from_montgomery(u_bytes: bytes) -> bytes | None:
    """The little-endian Edwards ``y`` for Montgomery ``u``, sign bit clear; None if undefined."""
    u = int.from_bytes(u_bytes, "little") & _MASK_255
    denominator = (u + 1) % _P
    if denominator == 0:
        return None
    y = (u - 1) * pow(denominator, _P - 2, _P) % _P
    return y.to_bytes(32, "little")


def _ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        bindings.crypto_sign_open(signature + message, public_key)
    except (BadSignatureError, CryptoError, ValueError):
        return False
    return True


def verify(identity_key: bytes, message: bytes, signature: bytes) -> bool:
    """Check an XEd25519 ``signature`` of ``message`` by a 33- or 32-byte identity key."""
    if len(signature) != 64:
        return False
    u_bytes = identity_key[1:] if len(identity_key) == 33 else identity_key
    if len(u_bytes) != 32:
        return False
    y = _edwards_y_from_montgomery(u_bytes)
    if y is None:
        return False
    cleared = signature[:63] + bytes([signature[63] & 0x7F])
    positive = y
    negative = y[:31] + bytes([y[31] | _SIGN_BIT])
    return _ed25519_verify(positive, message, cleared) or _ed25519_verify(
        negative, message, cleared
    )


def verify_signed_pre_key(identity_key: bytes, signed_pre_key: bytes, signature: bytes) -> bool:
    """Accept a signature over the 33-byte serialised pre-key or over its 32-byte ``u``."""
    if verify(identity_key, signed_pre_key, signature):
        return True
    return len(signed_pre_key) == 33 and verify(identity_key, signed_pre_key[1:], signature)


def clamp(private_key: bytes) -> bytes:
    """Clamp a 32-byte Curve25519 private scalar as X25519 does."""
    scalar = bytearray(private_key)
    scalar[0] &= 248
    scalar[31] &= 127
    scalar[31] |= 64
    return bytes(scalar)


def public_key(private_key: bytes) -> bytes:
    """The 33-byte serialised (``0x05 || u``) public key of a Curve25519 private key."""
    return b"\x05" + bindings.crypto_scalarmult_base(clamp(private_key))


def _reduce(value: bytes) -> bytes:
    return bindings.crypto_core_ed25519_scalar_reduce(value.ljust(64, b"\x00"))


def sign(
    private_key: bytes,
    message: bytes,
    *,
    libsignal_convention: bool = True,
    random: bytes | None = None,
) -> bytes:
    """XEd25519-sign ``message`` with a Curve25519 private key.

    With ``libsignal_convention`` the Edwards sign bit travels in ``sig[63]``; without,
    the scalar is negated as the XEdDSA specification describes. ``random`` (64 bytes)
    makes signatures reproducible in tests.
    """
    nonce_random = os.urandom(64) if random is None else random
    if len(nonce_random) != 64:
        raise ValueError("random must be 64 bytes")
    scalar = _reduce(clamp(private_key))
    edwards_public = bindings.crypto_scalarmult_ed25519_base_noclamp(scalar)
    sign_bit = edwards_public[31] & _SIGN_BIT
    if sign_bit and not libsignal_convention:
        scalar = bindings.crypto_core_ed25519_scalar_negate(scalar)
        edwards_public = bindings.crypto_scalarmult_ed25519_base_noclamp(scalar)
        sign_bit = 0
    r = _reduce(hashlib.sha512(_NONCE_PREFIX + scalar + message + nonce_random).digest())
    commitment = bindings.crypto_scalarmult_ed25519_base_noclamp(r)
    h = _reduce(hashlib.sha512(commitment + edwards_public + message).digest())
    s = bindings.crypto_core_ed25519_scalar_add(
        bindings.crypto_core_ed25519_scalar_mul(h, scalar), r
    )
    return commitment + s[:31] + bytes([s[31] | sign_bit])
