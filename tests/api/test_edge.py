"""Request ids, per-IP rate limiting and request timeouts (obscura-contract §1.2, §1.3, §1.7)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import trio

from relay.api.edge import EdgePolicy, RouteClass
from relay.api.routes import Tier
from relay.config import Settings
from relay.process.server import Listening
from tests.rawhttp import raw_request

GENERATED_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
AUTH_LIMITED = {"rate_limit_auth_per_second": 1, "rate_limit_auth_burst": 3}


async def test_request_id_is_echoed(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/devices", headers={"x-request-id": "my trace id 42"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "my trace id 42"


@pytest.mark.parametrize("path", ["/v1/devices", "/nope", "/openapi.yaml"])
async def test_request_id_is_generated(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path)
    assert GENERATED_ID.match(response.headers["x-request-id"])
    other = await http.get(path)
    assert other.headers["x-request-id"] != response.headers["x-request-id"]


async def test_unknown_paths_and_methods(http: httpx.AsyncClient) -> None:
    missing = await http.get("/v2/whatever")
    assert missing.status_code == 404
    assert missing.content == b""
    wrong_method = await http.patch("/v1/devices")
    assert wrong_method.status_code == 405
    assert wrong_method.content == b""
    assert set(wrong_method.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert (await http.options("/v1/users")).status_code == 405


async def until_limited(
    send: Callable[[int], Awaitable[httpx.Response]], *, burst: int, per_second: int
) -> tuple[int, httpx.Response]:
    """Send requests until one is limited; check the count against the GCRA bound.

    Never limited before the burst is spent, and never more than the burst plus what
    refilled meanwhile: a bucket that is not shared, or not enforced, fails here.
    """
    started = trio.current_time()
    for attempt in range(burst + 60):
        response = await send(attempt)
        if response.status_code == 429:
            elapsed = trio.current_time() - started
            assert burst <= attempt <= burst + int(elapsed * per_second) + 1
            return attempt, response
    pytest.fail("never rate limited")


def post_users(
    http: httpx.AsyncClient, **kwargs: Any
) -> Callable[[int], Awaitable[httpx.Response]]:
    async def send(_: int) -> httpx.Response:
        return await http.post("/v1/users", json={}, **kwargs)

    return send


@pytest.mark.settings(**AUTH_LIMITED)
async def test_auth_tier_returns_429_with_retry_after(http: httpx.AsyncClient) -> None:
    _, response = await until_limited(
        post_users(http, headers={"x-request-id": "limited"}), burst=3, per_second=1
    )
    assert response.text == "Too Many Requests! Wait for 1s"
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["retry-after"] == "1"
    assert response.headers["x-ratelimit-after"] == "1"
    assert response.headers["x-request-id"] == "limited"


@pytest.mark.settings(**AUTH_LIMITED)
async def test_auth_tier_covers_every_session_route(http: httpx.AsyncClient) -> None:
    routes = [("POST", "/v1/users"), ("POST", "/v1/sessions"), ("POST", "/v1/sessions/refresh")]
    routes.append(("DELETE", "/v1/sessions"))

    async def send(attempt: int) -> httpx.Response:
        method, path = routes[attempt % len(routes)]
        return await http.request(method, path)

    await until_limited(send, burst=3, per_second=1)


@pytest.mark.settings(**AUTH_LIMITED)
async def test_tiers_are_independent(http: httpx.AsyncClient) -> None:
    await until_limited(post_users(http), burst=3, per_second=1)
    assert (await http.get("/v1/devices")).status_code == 401


@pytest.mark.settings(**AUTH_LIMITED)
async def test_bucket_refills(http: httpx.AsyncClient) -> None:
    await until_limited(post_users(http), burst=3, per_second=1)
    await trio.sleep(1.1)
    assert (await http.post("/v1/users", json={})).status_code == 422


@pytest.mark.settings(rate_limit_per_second=1, rate_limit_burst=2)
async def test_standard_tier_counts_unauthenticated_requests(http: httpx.AsyncClient) -> None:
    paths = [("GET", "/v1/devices"), ("GET", "/v1/users/x"), ("PUT", "/v1/push-tokens")]

    async def send(attempt: int) -> httpx.Response:
        method, path = paths[attempt % len(paths)]
        response = await http.request(method, path)
        assert response.status_code in (401, 429)
        return response

    await until_limited(send, burst=2, per_second=1)


@pytest.mark.settings(rate_limit_per_second=1, rate_limit_burst=1)
async def test_unlimited_routes(http: httpx.AsyncClient) -> None:
    for _ in range(5):
        assert (await http.get("/openapi.yaml")).status_code == 200
        assert (await http.get("/nope")).status_code == 404


@pytest.mark.settings(**AUTH_LIMITED)
async def test_clients_behind_a_trusted_proxy_are_limited_separately(
    http: httpx.AsyncClient,
) -> None:
    await until_limited(
        post_users(http, headers={"x-forwarded-for": "203.0.113.1"}), burst=3, per_second=1
    )
    bob = {"x-forwarded-for": "198.51.100.7, 203.0.113.2"}
    assert (await http.post("/v1/users", json={}, headers=bob)).status_code == 422
    # Spoofing a left-hand hop does not escape Alice's (already empty) bucket.
    spoofed = {"x-forwarded-for": "1.2.3.4, 203.0.113.1"}
    await until_limited(post_users(http, headers=spoofed), burst=0, per_second=1)


@pytest.mark.settings(server_trusted_proxies=(), **AUTH_LIMITED)
async def test_forwarded_for_from_an_untrusted_peer_is_ignored(http: httpx.AsyncClient) -> None:
    async def send(attempt: int) -> httpx.Response:
        headers = {"x-forwarded-for": f"203.0.113.{attempt}"}
        return await http.post("/v1/users", json={}, headers=headers)

    await until_limited(send, burst=3, per_second=1)


@pytest.mark.settings(server_request_timeout_secs=1)
async def test_slow_body_gets_an_empty_408(relay: Listening) -> None:
    head = (
        b"POST /v1/users HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: 60\r\nx-request-id: slow-one\r\n\r\n"
    )
    started = trio.current_time()
    response = await raw_request(relay.api_url, head, [(0.0, b'{"username": '), (5.0, b"x")])
    elapsed = trio.current_time() - started
    status_line, _, rest = response.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 408")
    headers = rest.lower()
    assert b"content-length: 0" in headers
    assert b"x-request-id: slow-one" in headers
    assert 0.9 < elapsed < 4


@pytest.mark.parametrize(
    ("path", "tier", "timeout", "route"),
    [
        ("/v1/users", Tier.AUTH, 7, "/v1/users"),
        ("/v1/sessions", Tier.AUTH, 7, "/v1/sessions"),
        ("/v1/sessions/refresh", Tier.AUTH, 7, "/v1/sessions/refresh"),
        ("/v1/users/0d5f", Tier.STANDARD, 7, "/v1/users/{userId}"),
        ("/v1/devices", Tier.STANDARD, 7, "/v1/devices"),
        ("/v1/devices/keys", Tier.STANDARD, 7, "/v1/devices/keys"),
        ("/v1/messages", Tier.STANDARD, 7, "/v1/messages"),
        ("/v1/gateway", Tier.STANDARD, 7, "/v1/gateway"),
        ("/v1/gateway/ticket", Tier.STANDARD, 7, "/v1/gateway/ticket"),
        ("/v1/push-tokens", Tier.STANDARD, 7, "/v1/push-tokens"),
        ("/v1/attachments", None, 120, "/v1/attachments"),
        ("/v1/attachments/0d5f", None, 120, "/v1/attachments/{id}"),
        ("/v1/backup", None, 60, "/v1/backup"),
        ("/openapi.yaml", None, 600, "/openapi.yaml"),
        ("/elsewhere", None, 600, "unrouted"),
    ],
)
def test_route_classes(path: str, tier: Tier | None, timeout: int, route: str) -> None:
    policy = EdgePolicy(Settings(server_request_timeout_secs=7))
    assert policy.classify(path) == RouteClass(tier, timeout, route)


def test_timeouts_never_exceed_the_global_one() -> None:
    policy = EdgePolicy(Settings(server_global_timeout_secs=50, attachment_timeout_secs=120))
    assert policy.classify("/v1/attachments").timeout == 50
    assert policy.classify("/v1/users").timeout == 30
