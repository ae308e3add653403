"""What every HTTP/1.1 connection of one listener shares: the app, limits, shutdown.

Both ways a plain request is served (:mod:`relay.transport.lean` for the hot routes,
:mod:`relay.transport.h11_connection` for everything else) keep connections the same
way: an idle keep-alive connection is closed after ``keep_alive_timeout`` or at once at
shutdown, a request head must arrive within a request timeout, the unread rest of a
request body answered early is read and dropped up to a bound so that the connection can
serve the next request (the limits are in :mod:`relay.transport.types`), and a
connection ends with a lingering close: FIN first, then the peer's remaining bytes are
drained for a moment, so that a response is never destroyed by the reset a close with
unread input sends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.typing import ASGIReceiveEvent, ConnectionState, HTTPScope, LifespanState

from relay.transport.types import (
    LINGER_BYTES,
    LINGER_SECS,
    RECEIVE_BYTES,
    REQUEST_TIMEOUT_SECS,
    Address,
    Headers,
)

AsgiApp = Callable[[Any, Any, Any], Awaitable[None]]

DISCONNECT: ASGIReceiveEvent = {"type": "http.disconnect"}
CONNECTION_CLOSE = (b"connection", b"close")


class Serving:
    """The application and connection policy of one listener."""

    def __init__(self, app: AsgiApp, config: Config, state: LifespanState) -> None:
        self.app = app
        self.config = config
        self.state = state
        self.stopping = False
        self._idle_scopes: set[trio.CancelScope] = set()

    def stop(self) -> None:
        """Shutdown: close idle connections now, the others after their current response."""
        self.stopping = True
        for scope in self._idle_scopes:
            scope.cancel()

    def scope(
        self,
        *,
        method: str,
        http_version: str,
        path: str,
        raw_path: bytes,
        query_string: bytes,
        headers: Headers,
        client: Address | None,
        server: Address | None,
    ) -> HTTPScope:
        """The ASGI scope of one request (as hypercorn builds it)."""
        return {
            "type": "http",
            "http_version": http_version,
            "asgi": {"spec_version": "2.1", "version": "3.0"},
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": raw_path,
            "query_string": query_string,
            "root_path": self.config.root_path,
            "headers": headers,
            "client": client,
            "server": server,
            "state": ConnectionState(self.state.copy()),
            "extensions": {},
        }

    async def receive_idle(
        self, stream: trio.abc.ReceiveStream, wait_secs: float
    ) -> bytes | bytearray | None:
        """Wait for bytes on a connection that may be closed at shutdown; None on timeout
        or shutdown, b"" at EOF."""
        if self.stopping:
            return None
        with trio.move_on_after(wait_secs) as scope:
            self._idle_scopes.add(scope)
            try:
                return await stream.receive_some(RECEIVE_BYTES)
            finally:
                self._idle_scopes.discard(scope)
        return None

    async def receive_within_request(
        self, stream: trio.abc.ReceiveStream
    ) -> bytes | bytearray | None:
        """Bytes of a request under way (its head or a body being drained); None when
        none come within the request timeout, b"" at EOF."""
        with trio.move_on_after(REQUEST_TIMEOUT_SECS):
            return await stream.receive_some(RECEIVE_BYTES)
        return None

    async def close(self, stream: trio.abc.Stream) -> None:
        """Close a connection gracefully: FIN, drain what the peer still sends (briefly,
        cut short at shutdown), then close the socket."""
        try:
            if isinstance(stream, trio.abc.HalfCloseableStream):
                await stream.send_eof()
                drained = 0
                with trio.move_on_after(LINGER_SECS):
                    while drained < LINGER_BYTES:
                        data = await self.receive_idle(stream, LINGER_SECS)
                        if not data:
                            break
                        drained += len(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)
