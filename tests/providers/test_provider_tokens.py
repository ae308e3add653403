"""Provider tokens: JOSE signatures cross-checked with PyJWT, APNs token reuse, OAuth2
caching with early refresh and single-flight fetches."""

from __future__ import annotations

import jwt as pyjwt
import pytest
import trio

from providers import jose
from providers.apns import TOKEN_REUSE_SECS, ProviderTokenCache
from providers.errors import CredentialError
from providers.oauth import AccessToken, TokenCache
from tests.pushkit import KEY_ID, TEAM_ID, Keys


def test_es256_tokens_verify_with_pyjwt_and_back(keys: Keys) -> None:
    token = jose.sign({"kid": KEY_ID}, {"iss": TEAM_ID, "iat": 1}, keys.apns_key)
    assert pyjwt.get_unverified_header(token) == {"kid": KEY_ID, "alg": "ES256"}
    claims = pyjwt.decode(token, keys.apns_key.public_key(), algorithms=["ES256"])
    assert claims == {"iss": TEAM_ID, "iat": 1}
    theirs = pyjwt.encode({"iss": "x"}, keys.apns_key, algorithm="ES256")
    assert jose.verify(theirs, keys.apns_key.public_key()) == {"iss": "x"}


def test_rs256_tokens_verify_with_pyjwt_and_back(keys: Keys) -> None:
    token = jose.sign({"typ": "JWT"}, {"aud": "a", "iat": 1, "exp": 2}, keys.fcm_key)
    decoded = pyjwt.decode(
        token,
        keys.fcm_key.public_key(),
        algorithms=["RS256"],
        audience="a",
        options={"verify_exp": False},
    )
    assert decoded["aud"] == "a"
    theirs = pyjwt.encode({"sub": "y"}, keys.fcm_key, algorithm="RS256")
    assert jose.verify(theirs, keys.fcm_key.public_key()) == {"sub": "y"}


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"),
        lambda t: t.split(".")[0] + ".e30." + t.split(".")[2],
        lambda t: t.replace(".", "", 1),
        lambda t: "!!." + t,
    ],
)
def test_tampered_tokens_do_not_verify(keys: Keys, mangle) -> None:  # type: ignore[no-untyped-def]
    token = jose.sign({"kid": KEY_ID}, {"iss": TEAM_ID, "iat": 1}, keys.apns_key)
    with pytest.raises(jose.InvalidJws):
        jose.verify(mangle(token), keys.apns_key.public_key())


def test_a_token_of_the_other_algorithm_is_refused(keys: Keys) -> None:
    token = jose.sign({}, {"iat": 1}, keys.fcm_key)
    with pytest.raises(jose.InvalidJws):
        jose.verify(token, keys.apns_key.public_key())


@pytest.mark.parametrize("pem", [b"", b"not a key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n"])
def test_unusable_keys_are_credential_errors(pem: bytes) -> None:
    with pytest.raises(CredentialError):
        jose.load_private_key(pem)


def test_the_apns_provider_token_is_reused_for_fifty_minutes(keys: Keys) -> None:
    now = [1_000_000.0]
    cache = ProviderTokenCache(lambda: now[0])
    credentials = keys.apns_credentials()
    first = cache.token(credentials)
    now[0] += TOKEN_REUSE_SECS - 1
    assert cache.token(credentials) == first
    now[0] += 2
    second = cache.token(credentials)
    assert second != first
    assert pyjwt.decode(second, keys.apns_key.public_key(), algorithms=["ES256"])["iat"] == int(
        now[0]
    )
    assert cache.minted == 2


async def test_oauth_tokens_are_refreshed_early_and_fetched_single_flight() -> None:
    now = [0.0]
    fetched: list[int] = []

    async def fetch() -> AccessToken:
        fetched.append(1)
        await trio.sleep(0.01)
        return AccessToken(f"token-{len(fetched)}", now[0] + 3600)

    cache = TokenCache(fetch, lambda: now[0])
    results: list[str] = []

    async def get() -> None:
        results.append(await cache.get())

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(get)
    assert results == ["token-1"] * 10
    now[0] = 3600 - 301
    assert await cache.get() == "token-1"
    now[0] = 3600 - 299  # inside the five-minute margin
    assert await cache.get() == "token-2"
    cache.invalidate("token-1")  # an old value does not drop the new token
    assert await cache.get() == "token-2"
    cache.invalidate("token-2")
    assert await cache.get() == "token-3"
