"""Per-client rate limiting (GCRA) and client-IP resolution behind trusted proxies. Sans-IO.

GCRA keeps one number per client, its *theoretical arrival time* (TAT). A bucket of
``burst`` cells refills one cell every ``1 / per_second`` seconds; a request is allowed
when, after spending a cell, the TAT is at most ``burst`` intervals ahead of now.
"""

from __future__ import annotations

import functools
import ipaddress
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from relay.config import IPNetwork

_MAX_TRACKED_KEYS = 100_000


@dataclass(frozen=True, slots=True)
class Quota:
    """``per_second`` cells refill per second, up to ``burst`` cells."""

    per_second: int
    burst: int


class GcraLimiter:
    """One GCRA bucket per key, with bounded memory."""

    def __init__(self, quota: Quota, *, max_keys: int = _MAX_TRACKED_KEYS) -> None:
        self._interval = 1.0 / quota.per_second
        self._tolerance = quota.burst * self._interval
        self._max_keys = max_keys
        self._tat: dict[str, float] = {}

    def check(self, key: str, now: float) -> float | None:
        """Spend a cell for ``key`` at time ``now``: None if allowed, else seconds to wait."""
        tat = max(self._tat.get(key, now), now) + self._interval
        if tat - now > self._tolerance:
            return tat - now - self._tolerance
        if len(self._tat) >= self._max_keys and key not in self._tat:
            self._evict_idle(now)
        self._tat[key] = tat
        return None

    def _evict_idle(self, now: float) -> None:
        # A key whose TAT is in the past has a full bucket: forgetting it changes nothing.
        self._tat = {key: tat for key, tat in self._tat.items() if tat > now}
        if len(self._tat) >= self._max_keys:
            # Every tracked client is mid-burst; drop the oldest half rather than grow.
            keep = sorted(self._tat.items(), key=lambda item: item[1])[len(self._tat) // 2 :]
            self._tat = dict(keep)


def retry_after_seconds(wait: float) -> int:
    """Whole seconds a client must wait, rounded up so that retrying then succeeds."""
    return max(1, math.ceil(wait))


# Every request resolves its peer's address: parsing it anew cost more than the rate
# limit's own check. Bounded, so many X-Forwarded-For values cannot grow it.
@functools.lru_cache(maxsize=4096)
def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientIpResolver:
    """Finds the client address a request should be limited under."""

    def __init__(self, trusted_proxies: Sequence[IPNetwork]) -> None:
        self._trusted = tuple(trusted_proxies)

    def _is_trusted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in self._trusted)

    def resolve(self, peer: str | None, forwarded_for: Iterable[str]) -> str:
        """The peer address, or for a trusted peer the right-most untrusted X-Forwarded-For hop.

        Unparseable hops are skipped; if no hop qualifies, the peer address is used.
        """
        peer_address = _parse_ip(peer) if peer else None
        if peer_address is None:
            return peer or "unknown"
        if self._is_trusted(peer_address):
            hops = [hop for header in forwarded_for for hop in header.split(",")]
            for hop in reversed(hops):
                address = _parse_ip(hop)
                if address is not None and not self._is_trusted(address):
                    return str(address)
        return str(peer_address)


class FailureWindow:
    """At most ``limit`` failures per key within ``window`` seconds (e.g. password
    guesses per username); successes cost nothing. Memory is bounded by ``max_keys``."""

    def __init__(self, limit: int, window: float, *, max_keys: int = _MAX_TRACKED_KEYS) -> None:
        self._limit = limit
        self._window = window
        self._max_keys = max_keys
        self._failures: dict[str, list[float]] = {}

    def _recent(self, key: str, now: float) -> list[float]:
        kept = [moment for moment in self._failures.get(key, ()) if now - moment < self._window]
        if kept:
            self._failures[key] = kept
        else:
            self._failures.pop(key, None)
        return kept

    def blocked(self, key: str, now: float) -> float | None:
        """Seconds until ``key`` may try again, or None if it may now."""
        recent = self._recent(key, now)
        if len(recent) < self._limit:
            return None
        return recent[-self._limit] + self._window - now

    def record(self, key: str, now: float) -> None:
        """Count a failure of ``key``."""
        if len(self._failures) >= self._max_keys and key not in self._failures:
            for other in list(self._failures):
                self._recent(other, now)
            if len(self._failures) >= self._max_keys:
                oldest = min(self._failures, key=lambda item: self._failures[item][-1])
                del self._failures[oldest]
        self._failures.setdefault(key, []).append(now)
