"""One HTTP/1.1 connection served with h11: every request the lean path does not take.

One task per connection reads a request, runs the ASGI application on it (its
``receive`` reads the body from the socket on demand, its ``send`` writes through one
lock), then decides whether the connection goes on:

* a request h11 refuses gets h11's status (400, 431, ...) with ``connection: close`` and
  the connection ends; so does a request with both ``Content-Length`` and
  ``Transfer-Encoding`` (RFC 9112 §6.1: a smuggling vector behind proxies);
* after a response sent before the request body arrived, a body of known length up to
  :data:`~relay.transport.serving.DISCARD_LIMIT_BYTES` is read and dropped and the next
  request is served; a larger or chunked body, or a client still waiting for
  ``100 Continue``, ends the connection after the response;
* ``Connection: close``, HTTP/1.0 without keep-alive, the keep-alive request limit, an
  idle keep-alive timeout and shutdown end it too, always with a lingering close.

``100 Continue`` is sent when the application first asks for the body, so a request
refused on its head alone never makes the client upload it. Responses are written as
hypercorn's h11 protocol wrote them (the server's ``date`` after the application's
headers, an empty 500 when the application fails before responding).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from urllib.parse import unquote

import h11
import trio
from hypercorn.typing import (
    ASGIReceiveEvent,
    ASGISendEvent,
    ResponseSummary,
)

from relay.transport.serving import CONNECTION_CLOSE, DISCONNECT, Serving
from relay.transport.types import DISCARD_LIMIT_BYTES, RECEIVE_BYTES, REQUEST_TIMEOUT_SECS, Address

log = logging.getLogger("relay.http")

_PEER_GONE = (trio.BrokenResourceError, trio.ClosedResourceError)
# A peer that takes no bytes of a response for this long is given up on.
WRITE_TIMEOUT_SECS = 60.0


class H11Connection:
    """Serves the requests of one connection until it ends, then closes it."""

    def __init__(
        self,
        serving: Serving,
        stream: trio.abc.HalfCloseableStream,
        client: Address | None,
        server: Address | None,
    ) -> None:
        self.serving = serving
        self.stream = stream
        self.client = client
        self.server = server
        self.h11 = h11.Connection(
            h11.SERVER, max_incomplete_event_size=serving.config.h11_max_incomplete_size
        )
        self.requests = 0
        self.broken = False
        self._send_lock = trio.Lock()
        self._read_scope: trio.CancelScope | None = None

    async def run(self, buffered: bytes = b"") -> None:
        """Serve requests (``buffered``: bytes already read from the connection)."""
        if buffered:
            self.h11.receive_data(buffered)
        try:
            while await self._serve_request():
                self.h11.start_next_cycle()
        except _PEER_GONE:
            pass
        finally:
            await self.serving.close(self.stream)

    async def _serve_request(self) -> bool:
        """One request and its response; True if the connection may serve another."""
        request = await self._next_request()
        if request is None:
            return False
        framing = {name for name, _ in request.headers}
        if b"transfer-encoding" in framing and b"content-length" in framing:
            await self.refuse(400)
            return False
        self.requests += 1
        exchange = _H11Exchange(self, request)
        started = time.time()
        try:
            with exchange.cancel_scope:
                await self.serving.app(exchange.scope, exchange.receive, exchange.send)
        except Exception:
            log.exception("Error in ASGI Framework")
        if exchange.refused:
            await self.refuse(exchange.refused)
            return False
        if not exchange.complete or exchange.response is None:
            if not exchange.head_sent and not self.broken:
                await self.refuse(500)
            return False
        await self.serving.config.log.access(
            exchange.scope, exchange.response, time.time() - started
        )
        return await self._ready_for_next(exchange)

    async def _next_request(self) -> h11.Request | None:
        """The next request's head, or None once the connection is to end."""
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as error:
                if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await self.refuse(error.error_status_hint)
                return None
            if isinstance(event, h11.Request):
                return event
            if event is not h11.NEED_DATA:
                return None  # ConnectionClosed
            data = await self._receive_head()
            if data is None:
                return None
            self.h11.receive_data(bytes(data))

    async def _receive_head(self) -> bytes | bytearray | None:
        """More of a request head: between requests the idle keep-alive timeout applies
        (and shutdown ends the wait), within a head the request timeout."""
        if not self.h11.trailing_data[0]:
            timeout = self.serving.config.keep_alive_timeout
            return await self.serving.receive_idle(self.stream, timeout)
        return await self.serving.receive_within_request(self.stream)

    async def _ready_for_next(self, exchange: _H11Exchange) -> bool:
        """After a complete response: drop an unread body if that keeps the connection
        usable; True if it may serve another request."""
        if self.broken or self.serving.stopping or self.h11.our_state is not h11.DONE:
            return False
        if self.h11.their_state is h11.SEND_BODY and (
            exchange.waiting_for_continue or not await self._discard_body(exchange)
        ):
            return False
        return self.h11.their_state is h11.DONE

    async def _discard_body(self, exchange: _H11Exchange) -> bool:
        """Read and drop the rest of a body the application left; False if it is too
        large, of unknown length, or does not arrive in time."""
        length = exchange.content_length
        if length is None or length - exchange.body_bytes > DISCARD_LIMIT_BYTES:
            return False
        with trio.move_on_after(REQUEST_TIMEOUT_SECS):
            while True:
                try:
                    event = self.h11.next_event()
                except h11.RemoteProtocolError:
                    return False
                if isinstance(event, h11.EndOfMessage):
                    return True
                if event is h11.NEED_DATA:
                    data = await self.stream.receive_some(RECEIVE_BYTES)
                    if not data:
                        return False
                    self.h11.receive_data(bytes(data))
        return False

    async def refuse(self, status: int) -> None:
        """An empty error response that ends the connection, as hypercorn answers."""
        headers = [
            (b"content-length", b"0"),
            CONNECTION_CLOSE,
            *self.serving.config.response_headers("h11"),
        ]
        try:
            data = self.h11.send(h11.Response(status_code=status, headers=headers))
            data += self.h11.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            return  # a response has begun already: nothing sane can follow
        await self.send_all(data or b"")

    async def send_all(self, data: bytes) -> None:
        """Write to the connection; a peer that is gone, or that does not take the bytes
        within :data:`WRITE_TIMEOUT_SECS`, marks the connection broken.

        The write is shielded: the application cancels its own tasks when its request
        ends (Quart-Trio does on ``http.disconnect``), and a write cut short would
        leave the peer half a message. Shutdown aborts the socket if it must.
        """
        async with self._send_lock:
            if self.broken:
                return
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + WRITE_TIMEOUT_SECS
                try:
                    await self.stream.send_all(data)
                except _PEER_GONE:
                    self.broken = True
            if scope.cancelled_caught:
                self.broken = True

    async def read_body_data(self) -> bytes | bytearray | None:
        """Read more of a request body; None if cut short by the end of the response
        (see :meth:`stop_reading`), b"" at EOF."""
        with trio.CancelScope() as scope:
            self._read_scope = scope
            try:
                return await self.stream.receive_some(RECEIVE_BYTES)
            except _PEER_GONE:
                return b""
            finally:
                self._read_scope = None
        return None

    def stop_reading(self) -> None:
        """The response is complete: a ``receive`` waiting for body bytes returns."""
        if self._read_scope is not None:
            self._read_scope.cancel()


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((value for key, value in headers if key == name), None)


class _H11Exchange:
    """The ASGI ``scope``, ``receive`` and ``send`` of one request."""

    def __init__(self, connection: H11Connection, request: h11.Request) -> None:
        self.connection = connection
        self.method = request.method.decode("ascii").upper()
        config = connection.serving.config
        path, _, query = request.target.partition(b"?")
        self.scope = connection.serving.scope(
            method=self.method,
            http_version=request.http_version.decode(),
            path=unquote(path.decode("ascii")),
            raw_path=path,
            query_string=query,
            headers=list(request.headers),
            client=connection.client,
            server=connection.server,
        )
        length = _header(request.headers, b"content-length")
        chunked = _header(request.headers, b"transfer-encoding") is not None
        # None: chunked, its length unknown (h11 allows no other framing in a request).
        self.content_length = int(length) if length is not None else None if chunked else 0
        self.waiting_for_continue = connection.h11.they_are_waiting_for_100_continue
        self.body_bytes = 0
        self.body_done = False
        self.head_sent = False
        self.complete = False
        self.refused = 0  # the status the connection answers instead of the application
        self.cancel_scope = trio.CancelScope()
        self.response: ResponseSummary | None = None
        self._done = trio.Event()
        self._last = connection.requests >= config.keep_alive_max_requests

    async def receive(self) -> ASGIReceiveEvent:
        if self.body_done or self.complete:
            # Nothing more comes until the response is over (the connection decides).
            await self._done.wait()
            return DISCONNECT
        connection = self.connection
        if self.waiting_for_continue and not self.head_sent:
            self.waiting_for_continue = False
            headers = connection.serving.config.response_headers("h11")
            await connection.send_all(
                connection.h11.send(h11.InformationalResponse(status_code=100, headers=headers))
                or b""
            )
        parts: list[bytes] = []
        while True:
            try:
                event = connection.h11.next_event()
            except h11.RemoteProtocolError as error:
                self._refuse(error.error_status_hint)
                return DISCONNECT
            if isinstance(event, h11.Data):
                parts.append(bytes(event.data))
                continue
            if isinstance(event, h11.EndOfMessage):
                self.body_done = True
                return self._body(parts, more=False)
            if parts:
                return self._body(parts, more=True)
            data = await connection.read_body_data()
            if data is None:  # the response ended first
                return DISCONNECT
            connection.h11.receive_data(bytes(data))

    def _refuse(self, status: int) -> None:
        """A malformed body: unless the application has begun to answer, it is cancelled
        and the connection answers ``status`` (from its own task: a write in the
        application's tasks could be cut short by the application)."""
        self.body_done = True
        if not self.head_sent:
            self.head_sent = self.complete = True
            self.refused = status
            self.cancel_scope.cancel()

    def _body(self, parts: list[bytes], *, more: bool) -> ASGIReceiveEvent:
        body = b"".join(parts)
        self.body_bytes += len(body)
        return {"type": "http.request", "body": body, "more_body": more}

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "http.response.start" and self.response is None:
            headers = list(message["headers"])
            self.response = {"status": message["status"], "headers": headers}
        elif message["type"] == "http.response.body" and self.response and not self.complete:
            await self._send_body(message.get("body", b""), message.get("more_body", False))

    async def _send_body(self, body: bytes, more: bool) -> None:
        connection = self.connection
        data = b""
        if not self.head_sent:
            assert self.response is not None
            server_headers = connection.serving.config.response_headers("h11")
            if self._last:
                server_headers.append(CONNECTION_CLOSE)
            headers = [*self.response["headers"], *server_headers]
            response = h11.Response(status_code=self.response["status"], headers=headers)
            data = connection.h11.send(response) or b""
            self.head_sent = True
        if body and self.method != "HEAD":
            data += connection.h11.send(h11.Data(data=body)) or b""
        if not more:
            data += connection.h11.send(h11.EndOfMessage()) or b""
            self.complete = True
        await connection.send_all(data)
        if self.complete:
            connection.stop_reading()
            self._done.set()
