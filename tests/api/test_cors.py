"""The CORS policy (sans-IO) and its setting: which origins pass, what a preflight and an
answer carry, when a gateway upgrade is refused; malformed origins refused at load."""

from __future__ import annotations

import pytest

from relay.api.cors import CorsPolicy, is_preflight, origin_of
from relay.config import SettingError, load_settings

PAGE = b"https://app.example"


def test_off_by_default_adds_nothing_and_checks_nothing() -> None:
    policy = CorsPolicy(load_settings({}).cors_origins)
    assert not policy.enabled
    assert policy.response_headers(PAGE) == []
    assert policy.upgrade_allowed(b"https://evil.example")


def test_listed_origins_get_grants_and_others_do_not() -> None:
    policy = CorsPolicy(load_settings({"RELAY_CORS_ORIGINS": "https://app.example/"}).cors_origins)
    status, headers = policy.preflight(PAGE)
    assert status == 204
    granted = dict(headers)
    assert granted[b"access-control-allow-origin"] == PAGE
    for name in (b"Authorization", b"Content-Type", b"Idempotency-Key", b"If-Match"):
        assert name in granted[b"access-control-allow-headers"]
    assert dict(policy.response_headers(PAGE))[b"access-control-expose-headers"] == (
        b"ETag, x-request-id"
    )
    status, headers = policy.preflight(b"https://evil.example")
    assert status == 403
    assert b"access-control-allow-origin" not in dict(headers)
    assert policy.response_headers(b"https://evil.example") == []
    assert not policy.upgrade_allowed(b"https://evil.example")
    assert policy.upgrade_allowed(None)  # a native client sends no Origin


def test_a_star_allows_any_origin() -> None:
    policy = CorsPolicy(("*",))
    assert policy.allows(b"https://anything.example")
    assert dict(policy.response_headers(PAGE))[b"access-control-allow-origin"] == PAGE


@pytest.mark.parametrize("value", ["app.example", "https://app.example/path", "ftp://x"])
def test_what_is_not_an_origin_is_refused(value: str) -> None:
    with pytest.raises(SettingError, match="RELAY_CORS_ORIGINS"):
        load_settings({"RELAY_CORS_ORIGINS": value})


def test_preflights_and_origins_are_recognised() -> None:
    headers = [(b"Origin", PAGE), (b"Access-Control-Request-Method", b"POST")]
    assert origin_of(headers) == PAGE
    assert is_preflight("OPTIONS", headers)
    assert not is_preflight("OPTIONS", headers[:1])
    assert not is_preflight("POST", headers)
