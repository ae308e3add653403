"""Per-IP limits shared by every host through Redis (a private redis-server): two
hosts spend one bucket, the stored state is exact, a restarted Redis is picked up again,
and while Redis cannot answer each process counts on its own with a warning, never an
error."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import trio

from bench.backing import RedisServer
from relay.api.edge import EdgePolicy
from relay.api.routes import Tier
from relay.config import Settings
from relay.services.shared_limits import SharedRateLimits
from storage.redis.client import RedisAddress, RedisConnection, RedisPool

CLIENT = "203.0.113.7"
SETTINGS = Settings(rate_limit_auth_per_second=1, rate_limit_auth_burst=3)


@pytest.fixture
async def hosts(redis_server: RedisServer) -> AsyncIterator[list[EdgePolicy]]:
    """Two hosts' edge policies on one Redis."""
    limits = [
        SharedRateLimits(RedisPool(RedisAddress.parse(redis_server.url), cooldown=0.05))
        for _ in range(2)
    ]
    try:
        yield [EdgePolicy(SETTINGS, shared) for shared in limits]
    finally:
        for shared in limits:
            await shared.aclose()


async def test_two_hosts_spend_one_bucket(hosts: list[EdgePolicy]) -> None:
    host_a, host_b = hosts
    now = trio.current_time()
    assert await host_a.admit(Tier.AUTH, CLIENT, now) is None
    assert await host_a.admit(Tier.AUTH, CLIENT, now) is None
    assert await host_b.admit(Tier.AUTH, CLIENT, now) is None
    waits = [await host.admit(Tier.AUTH, CLIENT, now) for host in (host_b, host_a)]
    assert all(wait is not None and 0.5 < wait <= 1.0 for wait in waits), waits
    # Another client and the other tier have buckets of their own.
    assert await host_b.admit(Tier.AUTH, "198.51.100.1", now) is None
    assert await host_b.admit(Tier.STANDARD, CLIENT, now) is None


async def test_the_bucket_is_stored_as_whole_microseconds(
    redis_server: RedisServer, hosts: list[EdgePolicy]
) -> None:
    await hosts[0].admit(Tier.AUTH, CLIENT, trio.current_time())
    connection = await RedisConnection.open(RedisAddress.parse(redis_server.url), within=5)
    try:
        stored = await connection.call("GET", f"relay:rate:auth:{CLIENT}")
        ttl = await connection.call("PTTL", f"relay:rate:auth:{CLIENT}")
    finally:
        await connection.aclose()
    assert isinstance(stored, bytes)
    assert stored.isdigit(), stored  # not 1.7964e+15: that would never limit again
    assert isinstance(ttl, int)
    assert 0 < ttl <= 1001


async def test_a_restarted_redis_is_used_again(
    redis_server: RedisServer, hosts: list[EdgePolicy]
) -> None:
    host = hosts[0]
    now = trio.current_time()
    assert await host.admit(Tier.AUTH, CLIENT, now) is None
    redis_server.stop()
    redis_server.start()  # an empty server: no buckets, no loaded script
    await host.admit(Tier.AUTH, CLIENT, now)  # the stale connection fails: local count
    await trio.sleep(0.1)
    for _ in range(3):
        assert await host.admit(Tier.AUTH, CLIENT, now) is None
    assert await host.admit(Tier.AUTH, CLIENT, now) is not None


async def test_without_redis_each_process_counts_alone(
    redis_server: RedisServer, hosts: list[EdgePolicy], caplog: pytest.LogCaptureFixture
) -> None:
    host = hosts[0]
    redis_server.stop()
    now = trio.current_time()
    with caplog.at_level(logging.WARNING, logger="relay.api"), trio.fail_after(2):
        allowed = [await host.admit(Tier.AUTH, CLIENT, now) is None for _ in range(4)]
    assert allowed == [True, True, True, False]
    warnings = [r.getMessage() for r in caplog.records if "shared rate limits" in r.getMessage()]
    assert len(warnings) == 1
    assert "counting per process" in warnings[0]
