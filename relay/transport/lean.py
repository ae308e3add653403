"""The lean HTTP/1.1 path: the hot routes' requests served without h11's machinery.

Hypercorn's trio worker spends about as much CPU on one small request as the whole
message send behind it (an h11 state machine, a task and queues per request, dozens of
scheduler round trips). A connection whose first request is one of the hot routes
(``POST /v1/messages``) is served here instead: one task reads requests framed by
:mod:`relay.transport.http1`, calls the same ASGI application with the scope the h11 path would have
built, and writes each response in one ``send_all``.

It keeps connections as :mod:`relay.transport.h11_connection` does (:mod:`relay.transport.serving`):
keep-alive with the same idle timeout and request limit, the rest of a body answered
early read and dropped (up to a bound) so the next request is served, an empty 500 (and
close) when the application fails or answers nothing, ``connection: close`` when asked
for, idle connections closed at shutdown, lingering closes. At the first request that is
not a plain one for a hot route, the rest of the connection, buffered bytes first, goes
to :class:`~relay.transport.h11_connection.H11Connection`.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote

import trio
from hypercorn.typing import ASGIReceiveEvent, ASGISendEvent

from relay.transport import http1
from relay.transport.serving import CONNECTION_CLOSE, DISCONNECT, Serving
from relay.transport.types import (
    DISCARD_LIMIT_BYTES,
    REQUEST_TIMEOUT_SECS,
    Address,
    Headers,
)

log = logging.getLogger("relay.http")

Route = tuple[str, str]  # (method, path)

# The hot routes' bodies are small: a larger one goes to the h11 path, which streams it
# (this path holds a body in memory). The send limit (2 MiB) is served here.
MAX_BODY_BYTES = 2 * 1024 * 1024


class LeanHttp:
    """Serves plain HTTP/1.1 requests for ``routes`` with ``app`` (an ASGI 3 callable)."""

    def __init__(self, serving: Serving, routes: frozenset[Route]) -> None:
        self.serving = serving
        self.app = serving.app
        self.config = serving.config
        self._routes = routes

    def wants(self, method: str, path: str) -> bool:
        """True if a connection whose first request is ``method path`` is served here."""
        return (method, path) in self._routes

    async def serve(
        self,
        stream: trio.abc.HalfCloseableStream,
        peeked: bytes,
        client: Address | None,
        server: Address | None,
    ) -> bytes | None:
        """Serve requests from ``stream`` (whose first bytes were ``peeked``).

        Returns the bytes already read for the h11 path, which takes the connection from
        the first request not served here, or None once the connection is done with
        (and closed).
        """
        connection = _Connection(self, stream, bytearray(peeked), client, server)
        rest = None
        try:
            rest = await connection.run()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            if rest is None:
                await self.serving.close(stream)
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
            if not served_ok or last or not request.keep_alive or lean.serving.stopping:
                return None
            del self.buffer[: request.body_end]

    async def receive_more(self, *, idle: bool) -> bool:
        """Read more into the buffer; False at EOF, on timeout or (idle) at shutdown."""
        serving = self.lean.serving
        if idle:
            chunk = await serving.receive_idle(self.stream, self.lean.config.keep_alive_timeout)
        else:
            chunk = await serving.receive_within_request(self.stream)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    async def _discard_body(self, request: http1.Request) -> bool:
        """Read the rest of a body the application answered without reading (bounded);
        False if the connection cannot go on."""
        if request.body_end - len(self.buffer) > DISCARD_LIMIT_BYTES:
            return False
        # The whole rest within the request timeout, as on the h11 path: a client
        # dripping it gets no longer.
        with trio.move_on_after(REQUEST_TIMEOUT_SECS):
            while len(self.buffer) < request.body_end:
                if not await self.receive_more(idle=False):
                    return False
            return True
        return False

    async def _exchange(self, request: http1.Request, path: str, last: bool) -> bool:
        """One request and its response (the connection's ``last``); False if the
        connection cannot go on."""
        exchange = _LeanExchange(self, request, last)
        scope = self.lean.serving.scope(
            method=request.method,
            http_version="1.1",
            path=path,
            raw_path=request.raw_path,
            query_string=request.query_string,
            headers=request.headers,
            client=self.client,
            server=self.server,
        )
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
        return exchange.sent and await self._discard_body(request)


class _LeanExchange:
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
        self._headers: Headers = []
        self._parts: list[bytes] = []

    async def receive(self) -> ASGIReceiveEvent:
        if self._delivered:
            # After the body: nothing more comes until the response is over.
            if not self.finished:
                self._done = self._done or trio.Event()
                await self._done.wait()
            return DISCONNECT
        self._delivered = True
        connection, request = self.connection, self.request
        try:
            while len(connection.buffer) < request.body_end:
                if not await connection.receive_more(idle=False):
                    return DISCONNECT
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return DISCONNECT
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
        """An empty 500 that closes the connection, as the h11 path answers a failed app."""
        await self._write(500, [(b"content-length", b"0"), CONNECTION_CLOSE], b"", False)

    async def _write(self, status: int, headers: Headers, body: bytes, last: bool) -> None:
        server_headers = self.connection.lean.config.response_headers("h11")
        if last:
            # Hypercorn's own header at its request limit, after the server's others.
            server_headers.append(CONNECTION_CLOSE)
        data = http1.encode_response(
            status, headers, body, server_headers, close=not self.request.keep_alive
        )
        try:
            await self.connection.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return  # the client is gone; the connection ends after the application
        self.sent = True
