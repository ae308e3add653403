"""Rate limits shared by every host through Redis: the same GCRA as
:mod:`relay.services.ratelimit`, run as a Lua script on Redis's clock, one round trip
per check. Callers fall back to counting per process when Redis cannot answer."""

from __future__ import annotations

import hashlib

from relay.services.ratelimit import Quota
from storage.redis.client import RedisPool, RedisReplyError

# KEYS[1] bucket; ARGV[1] interval in µs; ARGV[2] burst. 0: allowed, else µs to wait.
# The TAT is stored with %.0f: a bare Lua number would be stored as 1.7964e+15 and the
# limiter would never limit again.
GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
tat = tat + interval
if tat - now > tolerance then return tat - now - tolerance end
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
return 0
"""
_SHA = hashlib.sha1(GCRA_SCRIPT.encode()).hexdigest()  # noqa: S324 (Redis names scripts so)


class SharedRateLimits:
    """GCRA buckets in Redis, keyed ``relay:rate:<bucket>``."""

    def __init__(self, pool: RedisPool) -> None:
        self._pool = pool

    @property
    def where(self) -> str:
        """The Redis the buckets live in (no password)."""
        return str(self._pool.address)

    async def aclose(self) -> None:
        """Close the connections to Redis."""
        await self._pool.aclose()

    async def check(self, bucket: str, quota: Quota) -> float | None:
        """Spend a cell of ``bucket``: None if allowed, else seconds to wait.
        :class:`~storage.redis.client.RedisError` when Redis cannot answer."""
        interval_us = max(1, 1_000_000 // quota.per_second)
        key = f"relay:rate:{bucket}"
        try:
            reply = await self._pool.call("EVALSHA", _SHA, 1, key, interval_us, quota.burst)
        except RedisReplyError as error:
            if not error.args[0].startswith("NOSCRIPT"):
                raise
            reply = await self._pool.call("EVAL", GCRA_SCRIPT, 1, key, interval_us, quota.burst)
        if not isinstance(reply, int):
            raise RedisReplyError(f"the rate-limit script answered {reply!r}")
        return None if reply == 0 else reply / 1_000_000
