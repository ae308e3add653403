"""The lean HTTP/1.1 path: the hot routes' requests served without hypercorn's machinery.

Hypercorn's trio worker spends about as much CPU on one small request as the whole
message send behind it (an h11 state machine, a task and queues per request, dozens of
scheduler round trips). A connection whose first request is one of the hot routes
(``POST /v1/messages``) is served here instead: one task reads requests framed by
:mod:`relay.http1`, calls the same ASGI application with the scope hypercorn would have
built, and writes each response in one ``send_all``.

It keeps hypercorn's behaviour where a client can see it: keep-alive with the same idle
timeout and request limit, a connection closed when a response ends before its request
body arrived, an empty 500 (and close) when the application fails or answers nothing,
``connection: close`` when asked for, idle connections closed at shutdown. At the first
request that is not a plain one for a hot route, the rest of the connection, buffered
bytes first, goes to hypercorn.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import trio
from hypercorn.config import Config
from hypercorn.typing import (
    ASGIReceiveEvent,
    ASGISendEvent,
    ConnectionState,
    HTTPScope,
    LifespanState,
)

from relay import http1

log = logging.getLogger("relay.http")

Address = tuple[str, int]
Route = tuple[str, str]  # (method, path)
AsgiApp = Callable[[Any, Any, Any], Awaitable[None]]

# The hot routes' bodies are small: a larger one goes to hypercorn, which streams it
# (this path holds a body in memory). The send limit (2 MiB) is served here.
MAX_BODY_BYTES = 2 * 1024 * 1024
RECEIVE_BYTES = 64 * 1024
# A request's head and body, once begun, must arrive within this (the first head too).
REQUEST_TIMEOUT_SECS = 10.0
_DISCONNECT: ASGIReceiveEvent = {"type": "http.disconnect"}
_CONNECTION_CLOSE = (b"connection", b"close")


class LeanHttp:
    """Serves plain HTTP/1.1 requests for ``routes`` with ``app`` (an ASGI 3 callable)."""

    def __init__(
        self, app: AsgiApp, config: Config, state: LifespanState, routes: frozenset[Route]
    ) -> None:
        self.app = app
        self.config = config
        self.state = state
        self._routes = routes
        self.idle_scopes: set[trio.CancelScope] = set()
        self.stopping = False

    def wants(self, method: str, path: str) -> bool:
        """True if a connection whose first request is ``method path`` is served here."""
        return (method, path) in self._routes

    def stop(self) -> None:
        """Shutdown: close idle connections now, the others after their current response."""
        self.stopping = True
        for scope in self.idle_scopes:
            scope.cancel()

    async def serve(
        self,
        stream: trio.abc.Stream,
        peeked: bytes,
        client: Address | None,
        server: Address | None,
    ) -> bytes | None:
        """Serve requests from ``stream`` (whose first bytes were ``peeked``).

        Returns the bytes to replay to hypercorn, which takes the connection from the
        first request not served here, or None once the connection is done with (and
        closed).
        """
        connection = _Connection(self, stream, bytearray(peeked), client, server)
        rest = None
        try:
            rest = await connection.run()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            if rest is None:
                await trio.aclose_forcefully(stream)
        return rest


class _Connection:
    def __init__(
        self,
        lean: LeanHttp,
        stream: trio.abc.Stream,
        buffer: bytearray,
        client: Address | None,
        server: Address | None,
    ) -> None:
        self.lean = lean
        self.stream = stream
        self.buffer = buffer
        self.client = client
        self.server = server

    async def run(self) -> bytes | None:
        lean = self.lean
        served = 0
        while True:
            try:
                request = http1.parse_request(self.buffer)
            except http1.NotPlain:
                return bytes(self.buffer)
            if request is None:
                if not await self.receive_more(idle=not self.buffer):
                    return None
                continue
            path = unquote(request.raw_path.decode("ascii"))
            too_large = request.body_end - request.body_start > MAX_BODY_BYTES
            if too_large or not lean.wants(request.method, path):
                return bytes(self.buffer)
            served += 1
            last = served >= lean.config.keep_alive_max_requests
            served_ok = await self._exchange(request, path, last)
            if not served_ok or last or not request.keep_alive or lean.stopping:
                return None
            del self.buffer[: request.body_end]

    async def receive_more(self, *, idle: bool) -> bool:
        """Read more into the buffer; False at EOF, on timeout or (idle) at shutdown."""
        lean = self.lean
        if idle and lean.stopping:
            return False
        timeout = lean.config.keep_alive_timeout if idle else REQUEST_TIMEOUT_SECS
        with trio.move_on_after(timeout) as scope:
            if idle:
                lean.idle_scopes.add(scope)
            try:
                chunk = await self.stream.receive_some(RECEIVE_BYTES)
            finally:
                lean.idle_scopes.discard(scope)
        if scope.cancelled_caught or not chunk:
            return False
        self.buffer += chunk
        return True

    async def _exchange(self, request: http1.Request, path: str, last: bool) -> bool:
        """One request and its response (the connection's ``last``); False if the
        connection cannot go on."""
        exchange = _Exchange(self, request, last)
        scope: HTTPScope = {
            "type": "http",
            "http_version": "1.1",
            "asgi": {"spec_version": "2.1", "version": "3.0"},
            "method": request.method,
            "scheme": "http",
            "path": path,
            "raw_path": request.raw_path,
            "query_string": request.query_string,
            "root_path": self.lean.config.root_path,
            "headers": request.headers,
            "client": self.client,
            "server": self.server,
            "state": ConnectionState(self.lean.state.copy()),
            "extensions": {},
        }
        try:
            await self.lean.app(scope, exchange.receive, exchange.send)
        except Exception:
            log.exception("Error in ASGI Framework")
            if exchange.started:
                return False
            await exchange.fail()
            return False
        if not exchange.finished:
            if not exchange.started:
                await exchange.fail()
            return False
        # As hypercorn: a connection whose request body is not all in is not reused.
        return exchange.sent and len(self.buffer) >= request.body_end


class _Exchange:
    """The ASGI ``receive`` and ``send`` of one request."""

    def __init__(self, connection: _Connection, request: http1.Request, last: bool) -> None:
        self.connection = connection
        self.request = request
        self.last = last
        self.started = False
        self.finished = False
        self.sent = False
        self._delivered = False
        self._done: trio.Event | None = None
        self._status = 0
        self._headers: http1.Headers = []
        self._parts: list[bytes] = []

    async def receive(self) -> ASGIReceiveEvent:
        if self._delivered:
            # After the body: nothing more comes until the response is over.
            if not self.finished:
                self._done = self._done or trio.Event()
                await self._done.wait()
            return _DISCONNECT
        self._delivered = True
        connection, request = self.connection, self.request
        try:
            while len(connection.buffer) < request.body_end:
                if not await connection.receive_more(idle=False):
                    return _DISCONNECT
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return _DISCONNECT
        body = bytes(connection.buffer[request.body_start : request.body_end])
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self._status = message["status"]
            self._headers = list(message["headers"])
        elif message["type"] == "http.response.body" and self.started and not self.finished:
            self._parts.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                self.finished = True
                await self._write(self._status, self._headers, b"".join(self._parts), self.last)
                if self._done is not None:
                    self._done.set()

    async def fail(self) -> None:
        """An empty 500 that closes the connection, as hypercorn answers a failed app."""
        await self._write(500, [(b"content-length", b"0"), _CONNECTION_CLOSE], b"", False)

    async def _write(self, status: int, headers: http1.Headers, body: bytes, last: bool) -> None:
        server_headers = self.connection.lean.config.response_headers("h11")
        if last:
            # Hypercorn's own header at its request limit, after the server's others.
            server_headers.append(_CONNECTION_CLOSE)
        data = http1.encode_response(
            status, headers, body, server_headers, close=not self.request.keep_alive
        )
        try:
            await self.connection.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return  # the client is gone; the connection ends after the application
        self.sent = True
