"""The API and management listeners: our accept loop, and who serves each connection.

Every accepted connection is served by a task of ours, never by hypercorn's protocol
stack (its h11 driver let one malformed request end the process with a
``BusyResourceError``, wedged keep-alive connections after an early response and never
closed a connection after ``Connection: close``). Hypercorn still provides the
configuration, the lifespan protocol and the socket set-up. A connection's first request
head is peeked, read by :func:`relay.transport.http1.sniff` (the one head parser, h11's
grammar; what it cannot read goes to the h11 path, which answers it), and decides:

* a WebSocket upgrade of the gateway goes to the :class:`Interceptor`;
* a request for a hot route goes to the lean path (:mod:`relay.transport.lean`) until a
  request it does not frame arrives;
* everything else (or the rest of such a connection, buffered bytes first) to
  :class:`~relay.transport.h11_connection.H11Connection`.

Nothing that happens inside one connection ends the listener: any exception is logged
with the peer and the connection is dropped. Accepted sockets are tracked so that
shutdown can abort what is left: stop accepting, close idle keep-alive connections,
give in-flight requests and sessions ``graceful_timeout`` to end on their own, then
cancel them and abort every connection still open (a shielded write to a peer that
stopped reading wakes with an error).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Protocol, cast

import trio
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.typing import Framework, LifespanState
from hypercorn.utils import parse_socket_addr, repr_socket_addr, wrap_app

from relay.transport.h11_connection import H11Connection
from relay.transport.http1 import RequestHead, sniff
from relay.transport.lean import LeanHttp, Route
from relay.transport.serving import AsgiApp, Serving
from relay.transport.types import (
    MAX_HEAD_BYTES,
    RECEIVE_BYTES,
    REQUEST_TIMEOUT_SECS,
    Address,
)

log = logging.getLogger("relay.http")


class Interceptor(Protocol):
    """Serves connections whose first request it wants, instead of the HTTP paths."""

    def wants(self, head: RequestHead) -> bool:
        """True to take the connection that starts with this request."""

    async def serve(self, stream: PeekedStream, peer: Address | None) -> None:
        """Serve the connection (``stream`` replays the head); the caller closes it."""


class PeekedStream(trio.abc.Stream):
    """A socket stream whose first ``receive_some`` calls return bytes already read."""

    def __init__(self, stream: trio.SocketStream, peeked: bytes) -> None:
        self._stream = stream
        self._peeked = peeked

    @property
    def socket(self) -> trio.socket.SocketType:
        """The underlying socket."""
        return self._stream.socket

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Replayed bytes first, then the socket's."""
        if self._peeked:
            size = len(self._peeked) if max_bytes is None else max_bytes
            data, self._peeked = self._peeked[:size], self._peeked[size:]
            await trio.lowlevel.checkpoint()
            return data
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send on the socket."""
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """See :meth:`trio.abc.SendStream.wait_send_all_might_not_block`."""
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        """Half-close the socket."""
        await self._stream.send_eof()

    async def aclose(self) -> None:
        """Close the socket."""
        await self._stream.aclose()

    def abort(self) -> None:
        """Close the socket at once, waking any task blocked on it."""
        self._stream.socket.close()


async def _peek_head(stream: trio.SocketStream, serving: Serving) -> bytes:
    """Read until a request head is complete, the size limit or EOF; the first byte
    within the idle keep-alive timeout (shutdown ends that wait), the rest within the
    request timeout."""
    data = bytes(await serving.receive_idle(stream, serving.config.keep_alive_timeout) or b"")
    with trio.move_on_after(REQUEST_TIMEOUT_SECS):
        while data and b"\r\n\r\n" not in data and len(data) < MAX_HEAD_BYTES:
            chunk = await stream.receive_some(RECEIVE_BYTES)
            if not chunk:
                break
            data += chunk
    return data


def _address(stream: trio.SocketStream, *, local: bool = False) -> Address | None:
    """The peer's address (or with ``local`` the server's), as hypercorn reports it."""
    sock = stream.socket
    try:
        raw = sock.getsockname() if local else sock.getpeername()
    except OSError:  # the peer is already gone
        return None
    address = parse_socket_addr(sock.family, raw)
    return None if address is None else (str(address[0]), int(address[1]))


class OpenConnections:
    """The TCP connections a server has accepted and not yet closed."""

    def __init__(self) -> None:
        self._streams: set[trio.SocketStream] = set()
        self._by_peer: dict[Address, trio.SocketStream] = {}

    def __len__(self) -> int:
        return len(self._streams)

    @contextmanager
    def track(self, stream: trio.SocketStream, peer: Address | None) -> Iterator[None]:
        """Register ``stream`` (connected to ``peer``) for as long as the context is open."""
        if peer is not None:
            self._by_peer[peer] = stream
        self._streams.add(stream)
        try:
            yield
        finally:
            self._streams.discard(stream)
            if peer is not None and self._by_peer.get(peer) is stream:
                del self._by_peer[peer]

    def abort(self, peer: Address | None) -> bool:
        """Drop the connection from ``peer`` (an ASGI scope's ``client``) without a goodbye."""
        stream = None if peer is None else self._by_peer.get((peer[0], int(peer[1])))
        if stream is None:
            return False
        stream.socket.close()
        return True

    def abort_all(self) -> int:
        """Drop every open connection; returns how many there were."""
        streams = list(self._streams)
        for stream in streams:
            stream.socket.close()
        return len(streams)


async def _abort_all_at(connections: OpenConnections, deadline: float) -> None:
    await trio.sleep_until(deadline)
    aborted = connections.abort_all()
    if aborted:
        log.warning("shutdown grace period over: aborted %d connections", aborted)


async def serve_http(
    app: Framework,
    config: Config,
    connections: OpenConnections,
    *,
    shutdown_trigger: Callable[[], Awaitable[object]],
    interceptor: Interceptor | None = None,
    lean_routes: frozenset[Route] = frozenset(),
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``config.bind`` until ``shutdown_trigger`` returns, then stop.

    ``lean_routes`` (method, path) are served by the lean path; ``app`` must then be an
    ASGI 3 application. Reports the bound ``http://host:port`` URLs through
    ``task_status``.
    """
    state: LifespanState = {}
    lifespan = Lifespan(wrap_app(app, config.wsgi_max_body_size, "asgi"), config, state)
    serving = Serving(cast("AsgiApp", app), config, state)
    lean = LeanHttp(serving, lean_routes) if lean_routes else None
    peeking = interceptor is not None or lean is not None
    sockets = config.create_sockets()
    listeners = []
    binds = []
    for sock in sockets.insecure_sockets:
        sock.listen(config.backlog)
        listeners.append(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))
        binds.append(f"http://{repr_socket_addr(sock.family, sock.getsockname())}")

    async def serve_connection(stream: trio.SocketStream, peer: Address | None) -> None:
        peeked = await _peek_head(stream, serving) if peeking else b""
        if peeking and not peeked:
            await serving.close(stream)
            return
        head = sniff(peeked)
        if interceptor is not None and head is not None and interceptor.wants(head):
            try:
                await interceptor.serve(PeekedStream(stream, peeked), peer)
            finally:
                # Lingering: a refusal must reach a client that sent more.
                await serving.close(stream)
            return
        local = _address(stream, local=True)
        rest: bytes | None = peeked
        if lean is not None and head is not None and lean.wants(head.method, head.path):
            rest = await lean.serve(stream, peeked, peer, local)
        if rest is not None:
            await H11Connection(serving, stream, peer, local).run(rest)

    async def handle(stream: trio.SocketStream) -> None:
        peer = _address(stream)
        with connections.track(stream, peer):
            try:
                await serve_connection(stream, peer)
            except Exception:
                # One connection's failure must never take the listener down.
                log.exception("connection from %s failed", peer)
                stream.socket.close()

    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as reaper:
            async with trio.open_nursery() as handlers:
                async with trio.open_nursery() as accepting:
                    accepting.start_soon(
                        partial(trio.serve_listeners, handle, listeners, handler_nursery=handlers)
                    )
                    task_status.started(binds)
                    await shutdown_trigger()
                    accepting.cancel_scope.cancel()
                for listener in listeners:
                    await listener.aclose()
                serving.stop()
                deadline = trio.current_time() + config.graceful_timeout
                handlers.cancel_scope.deadline = deadline
                reaper.start_soon(_abort_all_at, connections, deadline)
            reaper.cancel_scope.cancel()
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
