"""Cross-origin requests from browsers (``RELAY_CORS_ORIGINS``), sans-IO: which origins
may call, the answer to a preflight, the headers of an answer, whether a gateway upgrade
may proceed. Off (no headers, no checks) when no origin is configured."""

from __future__ import annotations

from collections.abc import Iterable

from relay.transport.types import Headers

ALLOWED_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE"
ALLOWED_HEADERS = b"Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match"
EXPOSED_HEADERS = b"ETag, x-request-id"
PREFLIGHT_MAX_AGE = b"600"


class CorsPolicy:
    """The configured origins (``*``: any)."""

    def __init__(self, origins: Iterable[str]) -> None:
        listed = tuple(origins)
        self.enabled = bool(listed)
        self._any = "*" in listed
        self._origins = frozenset(origin.encode("latin-1") for origin in listed)

    def allows(self, origin: bytes) -> bool:
        """Whether a page of ``origin`` may call."""
        return self._any or origin in self._origins

    def preflight(self, origin: bytes) -> tuple[int, Headers]:
        """The answer to an ``OPTIONS`` preflight from ``origin``: 204 with the grants,
        or 403 without them (the browser then refuses the request)."""
        if not self.allows(origin):
            return 403, [(b"vary", b"Origin")]
        return 204, [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-methods", ALLOWED_METHODS),
            (b"access-control-allow-headers", ALLOWED_HEADERS),
            (b"access-control-max-age", PREFLIGHT_MAX_AGE),
            (b"vary", b"Origin"),
        ]

    def response_headers(self, origin: bytes | None) -> Headers:
        """Headers added to an answer to a request from ``origin`` (none for requests
        without an Origin, such as native clients', or from origins not allowed)."""
        if not self.enabled or origin is None or not self.allows(origin):
            return []
        return [
            (b"access-control-allow-origin", origin),
            (b"access-control-expose-headers", EXPOSED_HEADERS),
            (b"vary", b"Origin"),
        ]

    def upgrade_allowed(self, origin: bytes | None) -> bool:
        """Whether a gateway upgrade may proceed: browsers send their page's Origin and do
        not apply CORS to WebSockets, so the server checks it; clients that send no Origin
        (native apps) are not browsers and pass."""
        return not self.enabled or origin is None or self.allows(origin)


def origin_of(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The request's ``Origin`` header, if any."""
    for name, value in headers:
        if name.lower() == b"origin":
            return value
    return None


def is_preflight(method: str, headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """An ``OPTIONS`` request asking for a cross-origin grant."""
    return method == "OPTIONS" and any(
        name.lower() == b"access-control-request-method" for name, _ in headers
    )
