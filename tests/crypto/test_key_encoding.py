"""Strict base64 and the 33-byte key / 64-byte signature formats."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.crypto.keys import (
    KeyFormatError,
    decode_base64_strict,
    encode_base64,
    parse_public_key,
    parse_signature,
)

VALID_KEY = b"\x05" + bytes(range(32))


@given(st.binary(max_size=100))
def test_round_trip(data: bytes) -> None:
    assert decode_base64_strict(encode_base64(data)) == data


@pytest.mark.parametrize(
    "text",
    [
        "QQ",  # missing padding
        "QR==",  # non-zero trailing bits
        "QQ==\n",  # whitespace
        " QQ==",
        "QQ=",  # wrong padding
        "-_8=",  # URL-safe alphabet
        "QQ==QQ==",  # padding in the middle
        "é",  # not ASCII
        "A",
    ],
)
def test_non_canonical_base64_is_rejected(text: str) -> None:
    with pytest.raises(KeyFormatError):
        decode_base64_strict(text)


def test_public_key_must_be_33_bytes() -> None:
    with pytest.raises(KeyFormatError, match=r"^Invalid key length: 32 \(expected 33 bytes"):
        parse_public_key(encode_base64(VALID_KEY[1:]))
    with pytest.raises(KeyFormatError, match="Invalid key length: 34"):
        parse_public_key(encode_base64(VALID_KEY + b"\x00"))


def test_public_key_must_start_with_0x05() -> None:
    with pytest.raises(KeyFormatError, match=r"^Invalid key prefix \(expected 0x05\)$"):
        parse_public_key(encode_base64(b"\x06" + VALID_KEY[1:]))


def test_valid_public_key_is_44_characters_without_padding() -> None:
    text = encode_base64(VALID_KEY)
    assert len(text) == 44
    assert not text.endswith("=")
    assert parse_public_key(text) == VALID_KEY


def test_signature_must_be_64_bytes() -> None:
    assert parse_signature(encode_base64(bytes(64))) == bytes(64)
    assert encode_base64(bytes(64)).endswith("==")
    with pytest.raises(KeyFormatError, match=r"^Invalid signature length: 63 \(expected 64\)$"):
        parse_signature(base64.b64encode(bytes(63)).decode())
