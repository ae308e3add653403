"""XEd25519 verification of signed pre-keys, against libsignal's published vector."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.crypto import xeddsa

# libsignal's Curve25519 signature test vector (libsignal-protocol-c test_curve25519.c,
# the same bytes as libsignal's Java and Rust suites): Alice's identity key signs her
# serialised 33-byte ephemeral public key.
ALICE_IDENTITY_PRIVATE = bytes.fromhex(
    "c097248412e58bf05df487968205132794178e367637f5818f81e0e6ce73e865"
)
ALICE_IDENTITY_PUBLIC = bytes.fromhex(
    "05ab7e717d4a163b7d9a1d8071dfe9dcf8cdcd1cea3339b6356be84d887e322c64"
)
ALICE_EPHEMERAL_PUBLIC = bytes.fromhex(
    "05edce9d9c415ca78cb7252e72c2c4a554d3eb29485a0e1d503118d1a82d99fb4a"
)
ALICE_SIGNATURE = bytes.fromhex(
    "5de88ca9a89b4a115da79109c67c9c7464a3e4180274f1cb8c63c2984e286dfb"
    "ede82deb9dcd9fae0bfbb821569b3d9001bd8130cd11d486cef047bd60b86e88"
)


def test_public_key_derivation_matches_libsignal() -> None:
    assert xeddsa.public_key(ALICE_IDENTITY_PRIVATE) == ALICE_IDENTITY_PUBLIC


def test_libsignal_vector_verifies() -> None:
    assert xeddsa.verify(ALICE_IDENTITY_PUBLIC, ALICE_EPHEMERAL_PUBLIC, ALICE_SIGNATURE)
    assert xeddsa.verify_signed_pre_key(
        ALICE_IDENTITY_PUBLIC, ALICE_EPHEMERAL_PUBLIC, ALICE_SIGNATURE
    )


def test_libsignal_vector_carries_the_sign_bit_in_the_signature() -> None:
    # The vector's last byte has its top bit set: the libsignal convention.
    assert ALICE_SIGNATURE[63] & 0x80


@pytest.mark.parametrize("flip", [0, 31, 63])
def test_tampered_signature_is_rejected(flip: int) -> None:
    tampered = bytearray(ALICE_SIGNATURE)
    tampered[flip] ^= 0x01
    assert not xeddsa.verify(ALICE_IDENTITY_PUBLIC, ALICE_EPHEMERAL_PUBLIC, bytes(tampered))


def test_other_message_or_key_is_rejected() -> None:
    other = ALICE_EPHEMERAL_PUBLIC[:-1] + b"\x00"
    assert not xeddsa.verify(ALICE_IDENTITY_PUBLIC, other, ALICE_SIGNATURE)
    assert not xeddsa.verify(ALICE_EPHEMERAL_PUBLIC, ALICE_EPHEMERAL_PUBLIC, ALICE_SIGNATURE)


@pytest.mark.parametrize("libsignal_convention", [True, False])
@settings(max_examples=25, deadline=None)
@given(private=st.binary(min_size=32, max_size=32), message=st.binary(max_size=64))
def test_both_signer_conventions_verify(
    libsignal_convention: bool, private: bytes, message: bytes
) -> None:
    signature = xeddsa.sign(private, message, libsignal_convention=libsignal_convention)
    public = xeddsa.public_key(private)
    assert xeddsa.verify(public, message, signature)
    assert not xeddsa.verify(public, message + b"!", signature)
    if not libsignal_convention:
        assert signature[63] & 0x80 == 0


def test_signed_pre_key_accepts_the_33_and_the_32_byte_message() -> None:
    identity = xeddsa.clamp(os.urandom(32))
    pre_key = xeddsa.public_key(os.urandom(32))
    over_33 = xeddsa.sign(identity, pre_key)
    over_32 = xeddsa.sign(identity, pre_key[1:])
    public = xeddsa.public_key(identity)
    assert xeddsa.verify_signed_pre_key(public, pre_key, over_33)
    assert xeddsa.verify_signed_pre_key(public, pre_key, over_32)
    assert not xeddsa.verify_signed_pre_key(public, pre_key, over_32[:10] + bytes(54))


def test_malformed_inputs_are_rejected_not_raised() -> None:
    assert not xeddsa.verify(b"\x05" + b"\x01" * 5, b"m", ALICE_SIGNATURE)
    assert not xeddsa.verify(ALICE_IDENTITY_PUBLIC, b"m", ALICE_SIGNATURE[:63])
    # u = p - 1 has no Edwards equivalent (u + 1 = 0 mod p).
    u_minus_one = ((2**255 - 19) - 1).to_bytes(32, "little")
    assert not xeddsa.verify(b"\x05" + u_minus_one, b"m", ALICE_SIGNATURE)


def test_sign_requires_64_random_bytes() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        xeddsa.sign(ALICE_IDENTITY_PRIVATE, b"m", random=b"short")


def test_signing_is_deterministic_for_fixed_randomness() -> None:
    random = bytes(range(64))
    first = xeddsa.sign(ALICE_IDENTITY_PRIVATE, b"message", random=random)
    assert first == xeddsa.sign(ALICE_IDENTITY_PRIVATE, b"message", random=random)
    assert xeddsa.verify(ALICE_IDENTITY_PUBLIC, b"message", first)
