"""The ASGI layer in front of every API route: request ids, rate limits, timeouts.

It runs before routing, as the reference server's middleware stack does:

1. ``x-request-id``: the client's value is echoed, otherwise a UUIDv4 is generated;
   either way it is added to every response, including 408 and 429.
2. Per-IP rate limiting with two independent tiers (auth and standard); rejected
   requests get a plain-text 429 with ``retry-after`` before any other work.
3. Timeouts: the whole request, body upload included, must finish within its route's
   limit, else the client gets an empty 408.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import trio
from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGISendCallable,
    ASGISendEvent,
    HTTPScope,
    Scope,
)

from relay.api.asgi import respond
from relay.api.cors import CorsPolicy, is_preflight, origin_of
from relay.api.routes import TABLE, Deadline, Tier
from relay.config import Settings
from relay.observability import metrics
from relay.observability.requests import REQUEST_ID
from relay.services.ratelimit import ClientIpResolver, GcraLimiter, Quota, retry_after_seconds
from relay.services.shared_limits import SharedRateLimits
from relay.transport.types import Headers
from storage.redis.client import RedisError

ASGIApp = Callable[[Scope, ASGIReceiveCallable, ASGISendCallable], Any]

log = logging.getLogger("relay.api")
access = logging.getLogger("relay.access")

# While Redis is away, one warning a minute says the limits are per process.
_FALLBACK_WARNING_SECS = 60.0


@dataclass(frozen=True, slots=True)
class RouteClass:
    """How the edge treats one request path."""

    tier: Tier | None
    timeout: float
    route: str
    """The route template (a bounded metrics label), ``unrouted`` for unknown paths."""


class EdgePolicy:
    """Route classification and rate-limit state (callers pass the clock). With
    ``shared`` limits the buckets live in Redis, shared by every host; while Redis cannot
    answer, each process counts on its own (never a 5xx)."""

    def __init__(self, settings: Settings, shared: SharedRateLimits | None = None) -> None:
        limit = float(settings.server_global_timeout_secs)
        deadlines = {
            Deadline.REQUEST: min(float(settings.server_request_timeout_secs), limit),
            Deadline.ATTACHMENT: min(float(settings.attachment_timeout_secs), limit),
            Deadline.BACKUP: min(float(settings.backup_timeout_secs), limit),
            Deadline.GLOBAL: limit,
        }
        # Paths the table does not know (404s) get the global deadline and no tier.
        self._unrouted = RouteClass(None, limit, "unrouted")
        self._classes = {
            # Keyed by path: a str hashes once, a Route (tuples) on every lookup.
            route.path: RouteClass(route.tier, deadlines[route.deadline], route.path)
            for route in TABLE
        }
        self._quotas = {
            Tier.AUTH: Quota(settings.rate_limit_auth_per_second, settings.rate_limit_auth_burst),
            Tier.STANDARD: Quota(settings.rate_limit_per_second, settings.rate_limit_burst),
        }
        self._limiters = {tier: GcraLimiter(quota) for tier, quota in self._quotas.items()}
        self._shared = shared
        self._fallback_warned_at: float | None = None
        self.resolver = ClientIpResolver(settings.server_trusted_proxies)
        self.access_log = settings.access_log
        self.cors = CorsPolicy(settings.cors_origins)

    def classify(self, path: str) -> RouteClass:
        """The tier and timeout of a request path, from the route table."""
        route = TABLE.match(path)
        return self._unrouted if route is None else self._classes[route.path]

    async def admit(self, tier: Tier, client: str, now: float) -> float | None:
        """None if ``client`` may proceed, else the seconds it must wait."""
        if self._shared is not None:
            try:
                return await self._shared.check(f"{tier.value}:{client}", self._quotas[tier])
            except RedisError as error:
                self._warn_fallback(error, now)
        return self._limiters[tier].check(client, now)

    def _warn_fallback(self, error: RedisError, now: float) -> None:
        warned = self._fallback_warned_at
        if warned is None or now - warned >= _FALLBACK_WARNING_SECS:
            self._fallback_warned_at = now
            log.warning("shared rate limits unavailable, counting per process: %s", error)

    def client_key(self, peer: str | None, headers: Iterable[tuple[bytes, bytes]]) -> str:
        """The rate-limit key of a request: its client IP, trusted proxies considered."""
        forwarded = (v.decode("latin-1") for v in _header_values(headers, b"x-forwarded-for"))
        return self.resolver.resolve(peer, forwarded)

    async def admit_request(
        self,
        tier: Tier | None,
        peer: str | None,
        headers: Iterable[tuple[bytes, bytes]],
        now: float,
    ) -> int | None:
        """None if a request of ``tier`` (its route's, from :meth:`classify`) may proceed,
        else the whole seconds the client must wait."""
        if tier is None:
            return None
        wait = await self.admit(tier, self.client_key(peer, headers), now)
        return None if wait is None else retry_after_seconds(wait)


def _header_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> Iterator[bytes]:
    return (value for key, value in headers if key.lower() == name)


class EdgeMiddleware:
    """Wraps an ASGI app with :class:`EdgePolicy`."""

    def __init__(self, app: ASGIApp, policy: EdgePolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _admit(
        self,
        tier: Tier | None,
        client: tuple[str, int] | None,
        headers: Iterable[tuple[bytes, bytes]],
    ) -> int | None:
        peer = client[0] if client else None
        return await self.policy.admit_request(tier, peer, headers, trio.current_time())

    async def _http(
        self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        arrived = time.perf_counter()
        headers = scope["headers"]
        request_id = request_id_of(headers)
        serving = REQUEST_ID.set(request_id.decode("latin-1"))
        try:
            await self._serve(scope, receive, send, request_id, arrived)
        finally:
            REQUEST_ID.reset(serving)

    async def _serve(
        self,
        scope: HTTPScope,
        receive: ASGIReceiveCallable,
        send: ASGISendCallable,
        request_id: bytes,
        arrived: float,
    ) -> None:
        route = self.policy.classify(scope["path"])
        answered = AnsweredRequest(scope["method"], route.route, arrived, self.policy.access_log)
        cors = self.policy.cors
        origin = origin_of(scope["headers"]) if cors.enabled else None
        if origin is not None and is_preflight(scope["method"], scope["headers"]):
            answered.status, grants = cors.preflight(origin)
            await respond(send, answered.status, b"", [*grants, (b"x-request-id", request_id)])
            answered.record()
            return
        granted = cors.response_headers(origin)
        wait = await self._admit(route.tier, scope["client"], scope["headers"])
        if wait is not None:
            assert route.tier is not None
            metrics.RATE_LIMITED.labels(route.tier.value).inc()
            body, extra = too_many_requests(wait, request_id)
            await respond(send, 429, body, [*extra, *granted])
            answered.status, answered.bytes = 429, len(body)
            answered.record()
            return

        async def send_with_request_id(message: ASGISendEvent) -> None:
            if message["type"] == "http.response.body":
                answered.bytes += len(message.get("body", b""))
            elif message["type"] == "http.response.start":
                answered.status = message["status"]
                message = {
                    "type": "http.response.start",
                    "status": message["status"],
                    "headers": [*message["headers"], (b"x-request-id", request_id), *granted],
                    "trailers": message.get("trailers", False),
                }
            await send(message)

        try:
            with trio.move_on_after(route.timeout) as deadline:
                await self.app(scope, receive, send_with_request_id)
            if deadline.cancelled_caught and not answered.status:
                await respond(send, 408, b"", [(b"x-request-id", request_id), *granted])
                answered.status = 408
        finally:
            answered.record()


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(slots=True)
class AnsweredRequest:
    """What the edge (or the gateway, for an upgrade) saw of one request's answer:
    counted in the metrics and, with the access log on, written as its one
    ``relay.access`` line."""

    method: str
    route: str
    arrived: float
    log_it: bool
    status: int = 0
    bytes: int = 0

    def record(self) -> None:
        """Count (and log) the answer, if one was sent."""
        if not self.status:
            return  # the client left before any answer
        # A client chooses the method: anything else is one label value, not one each.
        method = self.method if self.method in _METHODS else "other"
        seconds = time.perf_counter() - self.arrived
        metrics.HTTP_REQUESTS.labels(method, self.route, str(self.status)).inc()
        metrics.HTTP_DURATION.labels(method, self.route).observe(seconds)
        if self.log_it:
            access.info(
                "%s %s %d %.1f ms %d bytes",
                method,
                self.route,
                self.status,
                seconds * 1000,
                self.bytes,
                extra={
                    "method": method,
                    "route": self.route,
                    "status": self.status,
                    "duration_ms": round(seconds * 1000, 3),
                    "bytes": self.bytes,
                },
            )


def request_id_of(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The client's ``x-request-id``, or a new UUIDv4."""
    return next(_header_values(headers, b"x-request-id"), b"") or str(uuid.uuid4()).encode()


def too_many_requests(seconds: int, request_id: bytes) -> tuple[bytes, Headers]:
    """Body and headers of the plain-text 429 (``retry-after`` in whole seconds)."""
    text = str(seconds).encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"x-ratelimit-after", text),
        (b"retry-after", text),
        (b"x-request-id", request_id),
    ]
    return b"Too Many Requests! Wait for " + text + b"s", headers
