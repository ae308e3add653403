"""HS256 access tokens: interoperability with PyJWT and the reference's validation rules."""

from __future__ import annotations

import base64
import json
import uuid

import jwt as pyjwt
import pytest

from relay.crypto.jwt import VERIFIED_CACHE_SIZE, InvalidToken, JwtCodec

SECRET = b"k" * 64
NOW = 1_800_000_000
codec = JwtCodec(SECRET)


def _segment(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_device_token_is_readable_by_pyjwt() -> None:
    user, device = uuid.uuid4(), uuid.uuid4()
    token = codec.encode(user, device, NOW + 900)
    claims = pyjwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"sub": str(user), "device_id": str(device), "exp": NOW + 900}
    assert pyjwt.get_unverified_header(token) == {"typ": "JWT", "alg": "HS256"}


def test_user_token_has_no_device_claim() -> None:
    token = codec.encode(uuid.uuid4(), None, NOW + 900)
    claims = pyjwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert "device_id" not in claims
    assert codec.decode(token, now=NOW).device_id is None


def test_pyjwt_tokens_are_accepted() -> None:
    user = uuid.uuid4()
    token = pyjwt.encode({"sub": str(user), "exp": NOW + 5, "extra": 1}, SECRET, algorithm="HS256")
    claims = codec.decode(token, now=NOW)
    assert claims.user_id == user
    assert claims.expires_at == NOW + 5


def test_expiry_has_sixty_seconds_of_leeway() -> None:
    token = codec.encode(uuid.uuid4(), None, NOW)
    codec.decode(token, now=NOW + 60)
    with pytest.raises(InvalidToken):
        codec.decode(token, now=NOW + 61)


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": NOW},  # no sub
        {"sub": "not-a-uuid", "exp": NOW},
        {"sub": str(uuid.uuid4())},  # no exp
        {"sub": str(uuid.uuid4()), "exp": "soon"},
        {"sub": str(uuid.uuid4()), "exp": True},
        {"sub": str(uuid.uuid4()), "exp": NOW, "device_id": "nope"},
        {"sub": str(uuid.uuid4()), "exp": NOW, "aud": "someone"},
    ],
)
def test_unusable_claims_are_rejected(claims: dict[str, object]) -> None:
    token = pyjwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        codec.decode(token, now=NOW)


def test_wrong_secret_is_rejected() -> None:
    token = JwtCodec(b"z" * 32).encode(uuid.uuid4(), None, NOW + 900)
    with pytest.raises(InvalidToken, match="bad signature"):
        codec.decode(token, now=NOW)


def test_other_algorithms_are_rejected() -> None:
    claims = {"sub": str(uuid.uuid4()), "exp": NOW + 900}
    unsigned = f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}."
    hs512 = pyjwt.encode(claims, SECRET, algorithm="HS512")
    for token in (unsigned, hs512):
        with pytest.raises(InvalidToken, match="algorithm"):
            codec.decode(token, now=NOW)


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "é.é.é", "!!!.!!!.!!!"])
def test_malformed_tokens_are_rejected(token: str) -> None:
    with pytest.raises(InvalidToken):
        codec.decode(token, now=NOW)


def test_tampered_payload_is_rejected() -> None:
    header, _, signature = codec.encode(uuid.uuid4(), None, NOW + 900).split(".")
    forged = _segment({"sub": str(uuid.uuid4()), "exp": NOW + 900})
    with pytest.raises(InvalidToken):
        codec.decode(f"{header}.{forged}.{signature}", now=NOW)


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        JwtCodec(b"")


def test_a_verified_token_does_not_vouch_for_another_signature() -> None:
    fresh = JwtCodec(SECRET)
    token = fresh.encode(uuid.uuid4(), None, NOW + 900)
    fresh.decode(token, now=NOW)
    signing_input, _, signature = token.rpartition(".")
    forged = signing_input + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(InvalidToken, match="bad signature"):
        fresh.decode(forged, now=NOW)
    assert fresh.decode(token, now=NOW).expires_at == NOW + 900


def test_the_verified_tokens_kept_are_bounded() -> None:
    fresh = JwtCodec(SECRET)
    tokens = [fresh.encode(uuid.uuid4(), None, NOW + 900) for _ in range(VERIFIED_CACHE_SIZE + 5)]
    users = [fresh.decode(token, now=NOW).user_id for token in tokens]
    assert len(fresh._verified) <= VERIFIED_CACHE_SIZE
    assert [fresh.decode(token, now=NOW).user_id for token in tokens[:3]] == users[:3]
