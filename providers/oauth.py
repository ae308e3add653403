"""Cached OAuth2 access tokens (FCM, HMS): refreshed early, fetched single-flight."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

REFRESH_MARGIN_SECS = 300.0


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and when it stops being valid (Unix seconds)."""

    value: str
    expires_at: float


Fetch = Callable[[], Awaitable[AccessToken]]


class TokenCache:
    """One access token, shared by every sender of one set of credentials.

    The token is replaced :data:`REFRESH_MARGIN_SECS` before it expires (or halfway
    through a shorter lifetime); concurrent callers wait for one fetch, never start
    their own.
    """

    def __init__(self, fetch: Fetch, clock: Callable[[], float] = time.time) -> None:
        self._fetch = fetch
        self._clock = clock
        self._token: AccessToken | None = None
        self._refresh_at = 0.0
        self._lock = trio.Lock()
        self.fetches = 0

    async def get(self) -> str:
        """A valid token, fetching one if needed."""
        token = self._token
        if token is not None and self._clock() < self._refresh_at:
            return token.value
        async with self._lock:
            token = self._token
            now = self._clock()
            if token is None or now >= self._refresh_at:
                token = await self._fetch()
                self.fetches += 1
                lifetime = token.expires_at - now
                margin = min(REFRESH_MARGIN_SECS, lifetime / 2)
                self._token, self._refresh_at = token, token.expires_at - margin
            return token.value

    def invalidate(self, value: str) -> None:
        """Drop ``value`` if it is still the cached token (the provider refused it)."""
        if self._token is not None and self._token.value == value:
            self._token = None
