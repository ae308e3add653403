"""A pool of long-lived HTTP/2 connections to one origin.

Requests take the connection with the most free streams; when every stream is busy
and the pool holds its configured number of connections, callers wait (backpressure)
until a stream frees up. A connection that received GOAWAY stops taking requests,
finishes what the peer accepted and is replaced; requests the peer did not process are
retried on another connection.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import trio

from providers.errors import ConnectFailed, ConnectionLost, NotProcessed, root_cause
from providers.h2pool.connection import ClientConnection, Response
from providers.h2pool.protocol import Header

log = logging.getLogger("providers.h2pool")

_NOT_PROCESSED_RETRIES = 3


@dataclass(frozen=True)
class PoolConfig:
    """Sizes and timeouts of a pool."""

    connections: int = 2
    max_streams_per_connection: int = 250
    connect_timeout: float = 10.0
    response_timeout: float = 30.0
    idle_ping_interval: float = 60.0
    ping_timeout: float = 10.0


@dataclass(frozen=True)
class Origin:
    """Where a pool connects: ``https`` (TLS + ALPN h2) or ``http`` (h2c, tests only)."""

    scheme: str
    host: str
    port: int

    @classmethod
    def from_url(cls, url: str) -> Origin:
        """The origin of ``url`` (its path is ignored)."""
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port)

    @property
    def authority(self) -> bytes:
        """The ``:authority`` pseudo-header."""
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (host if self.port == default else f"{host}:{self.port}").encode("ascii")


def client_ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """The system trust store (plus ``ca_file`` if given), ALPN ``h2``, TLS 1.2+."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    return context


class H2Pool:
    """Connections to one origin, opened on demand up to ``config.connections``."""

    def __init__(
        self,
        origin: Origin,
        nursery: trio.Nursery,
        *,
        config: PoolConfig | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.origin = origin
        self._nursery = nursery
        self._config = config or PoolConfig()
        if origin.scheme == "https" and ssl_context is None:
            ssl_context = client_ssl_context()
        self._ssl_context = ssl_context
        self._connections: list[ClientConnection] = []
        self._opening = 0
        self._waiting = trio.lowlevel.ParkingLot()
        self._closed = False
        self.connections_opened = 0

    @property
    def connections(self) -> int:
        """Connections currently open (including draining ones)."""
        return len(self._connections)

    @property
    def streams_in_use(self) -> int:
        """Streams reserved by requests in flight, over every connection."""
        return sum(connection.in_use for connection in self._connections)

    async def request(
        self,
        path: bytes,
        headers: Sequence[Header],
        body: bytes,
        *,
        response_timeout: float | None = None,
    ) -> Response:
        """POST ``body`` to ``path``; retried on another connection if not processed."""
        if response_timeout is None:
            response_timeout = self._config.response_timeout
        for attempt in range(_NOT_PROCESSED_RETRIES + 1):
            connection = await self._acquire()
            try:
                return await connection.request(
                    path, headers, body, response_timeout=response_timeout
                )
            except NotProcessed:
                if attempt == _NOT_PROCESSED_RETRIES:
                    raise
            finally:
                connection.release()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        """Close every connection; waiting callers get ConnectionLost."""
        self._closed = True
        self._waiting.unpark_all()
        for connection in list(self._connections):
            await connection.aclose()

    def _capacity_changed(self) -> None:
        if self._waiting:
            self._waiting.unpark_all()

    def _stream_released(self) -> None:
        # One stream freed: wake one waiter, not all of them (that is quadratic).
        if self._waiting:
            self._waiting.unpark(count=1)

    async def _acquire(self) -> ClientConnection:
        while True:
            if self._closed:
                raise ConnectionLost("pool closed")
            best: ClientConnection | None = None
            best_free = 0
            live = 0
            for connection in self._connections:
                if connection.accepting:
                    live += 1
                free = connection.available
                if free > best_free:
                    best, best_free = connection, free
            if best is not None:
                best.reserve()
                return best
            if live + self._opening < self._config.connections:
                await self._open()
                continue
            await self._waiting.park()

    async def _open(self) -> None:
        self._opening += 1
        try:
            await self._nursery.start(self._run_connection)
        finally:
            self._opening -= 1
            self._waiting.unpark_all()

    async def _connect(self) -> ClientConnection:
        origin = self.origin
        stream: trio.abc.Stream = await trio.open_tcp_stream(origin.host, origin.port)
        try:
            if origin.scheme == "https":
                assert self._ssl_context is not None
                tls = trio.SSLStream(
                    stream, self._ssl_context, server_hostname=origin.host, https_compatible=True
                )
                await tls.do_handshake()
                if tls.selected_alpn_protocol() != "h2":
                    raise ConnectFailed(f"{origin.host}:{origin.port} did not negotiate h2")
                stream = tls
            connection = ClientConnection(
                stream,
                scheme=origin.scheme.encode("ascii"),
                authority=origin.authority,
                max_streams=self._config.max_streams_per_connection,
                on_capacity=self._capacity_changed,
                on_release=self._stream_released,
            )
            await connection.handshake()
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        return connection

    async def _run_connection(
        self, task_status: trio.TaskStatus[ClientConnection] = trio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            with trio.fail_after(self._config.connect_timeout):
                connection = await self._connect()
        except trio.TooSlowError as error:
            raise ConnectFailed(f"connecting to {self.origin.host} timed out") from error
        except (OSError, trio.BrokenResourceError, ssl.SSLError) as error:
            cause = root_cause(error)
            raise ConnectFailed(f"connecting to {self.origin.host} failed: {cause}") from error
        self._connections.append(connection)
        self.connections_opened += 1
        task_status.started(connection)
        try:
            await connection.serve(
                idle_ping_interval=self._config.idle_ping_interval,
                ping_timeout=self._config.ping_timeout,
            )
        finally:
            self._connections.remove(connection)
            self._waiting.unpark_all()


@asynccontextmanager
async def open_pool(
    url: str, *, config: PoolConfig | None = None, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[H2Pool]:
    """A pool to ``url``'s origin for the duration of the block."""
    async with trio.open_nursery() as nursery:
        pool = H2Pool(Origin.from_url(url), nursery, config=config, ssl_context=ssl_context)
        try:
            yield pool
        finally:
            with trio.CancelScope(shield=True):
                await pool.aclose()
