"""GCRA rate limiting and client-IP resolution (sans-IO)."""

from __future__ import annotations

import pytest

from relay.config import Settings
from relay.services.ratelimit import ClientIpResolver, GcraLimiter, Quota, retry_after_seconds


def test_burst_then_one_cell_per_interval() -> None:
    limiter = GcraLimiter(Quota(per_second=1, burst=3))
    assert [limiter.check("a", 0.0) for _ in range(3)] == [None, None, None]
    wait = limiter.check("a", 0.0)
    assert wait == pytest.approx(1.0)
    assert limiter.check("a", 0.5) == pytest.approx(0.5)
    assert limiter.check("a", 1.0) is None
    assert limiter.check("a", 1.0) is not None


def test_rejections_do_not_consume_cells() -> None:
    limiter = GcraLimiter(Quota(per_second=1, burst=1))
    assert limiter.check("a", 0.0) is None
    for _ in range(10):
        assert limiter.check("a", 0.1) is not None
    assert limiter.check("a", 1.0) is None


def test_keys_are_independent() -> None:
    limiter = GcraLimiter(Quota(per_second=10, burst=2))
    assert limiter.check("a", 0.0) is None
    assert limiter.check("a", 0.0) is None
    assert limiter.check("a", 0.0) is not None
    assert limiter.check("b", 0.0) is None


def test_memory_is_bounded() -> None:
    limiter = GcraLimiter(Quota(per_second=1, burst=5), max_keys=100)
    for i in range(1000):
        limiter.check(f"client-{i}", float(i) * 0.001)
    assert len(limiter._tat) <= 100
    # An idle client was forgotten without losing its allowance.
    assert limiter.check("client-0", 10_000.0) is None


@pytest.mark.parametrize(("wait", "seconds"), [(0.01, 1), (0.99, 1), (1.0, 1), (1.01, 2), (5.5, 6)])
def test_retry_after_rounds_up_to_whole_seconds(wait: float, seconds: int) -> None:
    assert retry_after_seconds(wait) == seconds


resolver = ClientIpResolver(Settings().server_trusted_proxies)


def test_untrusted_peer_is_the_key_whatever_it_forwards() -> None:
    assert resolver.resolve("203.0.113.9", ["198.51.100.1"]) == "203.0.113.9"


def test_trusted_peer_uses_rightmost_untrusted_hop() -> None:
    chain = ["198.51.100.1, 203.0.113.7, 10.0.0.2"]
    assert resolver.resolve("127.0.0.1", chain) == "203.0.113.7"


def test_spoofed_left_hops_do_not_matter() -> None:
    assert resolver.resolve("10.1.1.1", ["1.1.1.1, 2.2.2.2"]) == "2.2.2.2"
    assert resolver.resolve("10.1.1.1", ["9.9.9.9, 2.2.2.2"]) == "2.2.2.2"


def test_unparseable_hops_are_skipped() -> None:
    assert resolver.resolve("127.0.0.1", ["198.51.100.1, garbage, "]) == "198.51.100.1"


def test_falls_back_to_peer_when_no_hop_qualifies() -> None:
    assert resolver.resolve("127.0.0.1", []) == "127.0.0.1"
    assert resolver.resolve("127.0.0.1", ["10.0.0.1, 192.168.1.1"]) == "127.0.0.1"


def test_multiple_headers_form_one_chain() -> None:
    assert resolver.resolve("127.0.0.1", ["198.51.100.1", "203.0.113.7"]) == "203.0.113.7"


def test_ipv6_loopback_is_trusted_and_mapped_addresses_normalised() -> None:
    assert resolver.resolve("::1", ["198.51.100.1"]) == "198.51.100.1"
    assert resolver.resolve("::ffff:127.0.0.1", ["198.51.100.1"]) == "198.51.100.1"
    assert resolver.resolve("::ffff:203.0.113.5", []) == "203.0.113.5"


def test_trust_can_be_withdrawn() -> None:
    strict = ClientIpResolver(())
    assert strict.resolve("127.0.0.1", ["198.51.100.1"]) == "127.0.0.1"
