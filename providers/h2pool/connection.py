"""One client HTTP/2 connection on a trio stream, driven through h2.

Many tasks issue requests concurrently; one reader task (:meth:`ClientConnection.serve`)
feeds received bytes to h2 and completes their exchanges. Writes go through one lock that
takes h2's output *inside* the lock, so frames leave in the order h2 produced them.

Stream accounting is ours: :attr:`ClientConnection.available` is the peer's current
``SETTINGS_MAX_CONCURRENT_STREAMS`` (which APNs lowers to 1 after a rejection), capped by
our own per-connection limit, minus the streams reserved by callers. h2 itself counts open
streams by scanning every stream on each new one (performance-notes §3), so the h2
connection here answers from our counter and purges closed streams every 256 streams.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import trio
from h2.errors import ErrorCodes

from providers.errors import ConnectionLost, NotProcessed, ResponseTimeout
from providers.h2pool.hpack_cache import CachingEncoder

log = logging.getLogger("providers.h2pool")

Header = tuple[bytes, bytes]
_READ_SIZE = 65536
_PURGE_EVERY = 256
_PING = b"relay-pg"


@dataclass(frozen=True, slots=True)
class Response:
    """A complete HTTP/2 response."""

    status: int
    headers: Sequence[Header]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower-case), if present."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def retry_after(self) -> float | None:
        """``Retry-After`` in seconds, if given as a number."""
        value = self.header(b"retry-after")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


class _CountingH2Connection(h2.connection.H2Connection):
    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config=config)
        self.outbound_open = 0
        self._since_purge = 0

    @property
    def open_outbound_streams(self) -> int:
        return self.outbound_open

    def stream_opened(self) -> None:
        self.outbound_open += 1
        self._since_purge += 1
        if self._since_purge >= _PURGE_EVERY:
            self._since_purge = 0
            self._open_streams(0)  # h2's own scan, which also drops closed streams


class _Exchange:
    __slots__ = ("body", "done", "error", "headers", "status")

    def __init__(self) -> None:
        self.status = 0
        self.headers: Sequence[Header] = ()
        self.body: list[bytes] = []
        self.done = trio.Event()
        self.error: Exception | None = None


def _h2_config() -> h2.config.H2Configuration:
    # Our headers are built as lower-case bytes already: skip h2's per-request checks.
    return h2.config.H2Configuration(
        client_side=True,
        header_encoding=None,
        validate_outbound_headers=False,
        normalize_outbound_headers=False,
        validate_inbound_headers=False,
    )


class ClientConnection:
    """An HTTP/2 client connection; see the module docstring."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        scheme: bytes,
        authority: bytes,
        max_streams: int,
        on_capacity: Callable[[], None],
        on_release: Callable[[], None] | None = None,
    ) -> None:
        self._stream = stream
        self._prefix: list[Header] = [
            (b":method", b"POST"),
            (b":scheme", scheme),
            (b":authority", authority),
        ]
        self._max_streams = max_streams
        self._on_capacity = on_capacity
        self._on_release = on_release or on_capacity
        self._h2 = _CountingH2Connection(_h2_config())
        self._h2.encoder = CachingEncoder()  # type: ignore[assignment]
        self._flushing = False
        self._exchanges: dict[int, _Exchange] = {}
        self._reserved = 0
        self._settings_seen = False
        self._goaway = False
        self._closed = False
        self._window = trio.Event()
        self._pong = trio.Event()
        self._last_received = trio.current_time()
        self.requests = 0

    @property
    def accepting(self) -> bool:
        """True while new requests may be started here."""
        return not (self._goaway or self._closed)

    @property
    def available(self) -> int:
        """Streams a new request could use now (0 once GOAWAY arrived or closed)."""
        if not self.accepting:
            return 0
        peer = self._h2.remote_settings.max_concurrent_streams
        return min(peer, self._max_streams) - self._reserved

    def reserve(self) -> None:
        """Take one stream for a request about to start."""
        self._reserved += 1

    def release(self) -> None:
        """Give back a stream taken with :meth:`reserve`."""
        self._reserved -= 1
        self._on_release()

    async def handshake(self) -> None:
        """Send our preface and settings, then wait for the peer's first SETTINGS."""
        self._h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20,
            },
        )
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(1 << 24)
        await self._flush()
        while not self._settings_seen:
            await self._receive_once()

    async def serve(self, *, idle_ping_interval: float, ping_timeout: float) -> None:
        """Read until the connection ends; ping the peer when idle."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._ping_when_idle, idle_ping_interval, ping_timeout)
                await self._read_until_closed()
                nursery.cancel_scope.cancel()
        finally:
            self._closed = True
            self._fail_all(ConnectionLost("connection closed"))
            with trio.CancelScope(shield=True):
                await self._stream.aclose()
            self._on_capacity()

    async def _read_until_closed(self) -> None:
        try:
            while not self._closed:
                await self._receive_once()
                if self._goaway and not self._exchanges:
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            self._fail_all(ConnectionLost(f"connection lost: {error!r}"))
        except ConnectionLost as error:
            self._fail_all(error)
        except h2.exceptions.ProtocolError as error:
            self._fail_all(ConnectionLost(f"HTTP/2 protocol error: {error}"))

    async def aclose(self) -> None:
        """Say GOAWAY and close; requests still in flight fail with ConnectionLost."""
        if self._closed:
            return
        self._closed = True
        try:
            self._h2.close_connection()
            await self._flush()
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionLost):
            pass
        await self._stream.aclose()

    async def request(
        self, path: bytes, headers: Sequence[Header], body: bytes, *, response_timeout: float
    ) -> Response:
        """POST ``body`` to ``path`` on a reserved stream and wait for the whole response."""
        try:
            stream_id = self._h2.get_next_available_stream_id()
            self._h2.send_headers(
                stream_id, [*self._prefix, (b":path", path), *headers], end_stream=not body
            )
            if body and len(body) <= min(
                self._h2.local_flow_control_window(stream_id), self._h2.max_outbound_frame_size
            ):
                # The common case: headers and the whole body leave in one write.
                self._h2.send_data(stream_id, body, end_stream=True)
                body = b""
        except h2.exceptions.ProtocolError as error:
            raise NotProcessed(f"stream not opened: {error}") from error
        self._h2.stream_opened()
        self.requests += 1
        exchange = _Exchange()
        self._exchanges[stream_id] = exchange
        try:
            if body:
                await self._send_body(stream_id, body)
            else:
                await self._flush()
            with trio.move_on_after(response_timeout):
                await exchange.done.wait()
            if not exchange.done.is_set():
                raise ResponseTimeout(f"no response within {response_timeout} s")
        finally:
            if self._finish(stream_id) is not None and not self._closed:
                # Abandoned (timeout or cancellation): tell the peer; the next flush sends it.
                with contextlib.suppress(h2.exceptions.ProtocolError):
                    self._h2.reset_stream(stream_id, ErrorCodes.CANCEL)
        if exchange.error is not None:
            raise exchange.error
        return Response(exchange.status, exchange.headers, b"".join(exchange.body))

    async def _send_body(self, stream_id: int, body: bytes) -> None:
        view = memoryview(body)
        while True:
            window = min(
                self._h2.local_flow_control_window(stream_id), self._h2.max_outbound_frame_size
            )
            if window >= len(view):
                self._h2.send_data(stream_id, bytes(view), end_stream=True)
                await self._flush()
                return
            if window > 0:
                self._h2.send_data(stream_id, bytes(view[:window]))
                view = view[window:]
                await self._flush()
                continue
            window_opened = self._window
            await window_opened.wait()
            if self._closed or self._exchanges.get(stream_id) is None:
                raise ConnectionLost("connection closed while sending")

    def _finish(self, stream_id: int) -> _Exchange | None:
        exchange = self._exchanges.pop(stream_id, None)
        if exchange is not None:
            self._h2.outbound_open -= 1
            exchange.done.set()
        return exchange

    def _fail_all(self, error: Exception) -> None:
        for stream_id in list(self._exchanges):
            exchange = self._exchanges[stream_id]
            if exchange.error is None:
                exchange.error = error
            self._finish(stream_id)
        self._wake_senders()

    def _wake_senders(self) -> None:
        self._window.set()
        self._window = trio.Event()

    async def _flush(self) -> None:
        # Writes coalesce: while one task is sending, others only add to h2's buffer and
        # return; the sending task loops until the buffer is empty. One writer keeps the
        # frames in order. The send is shielded: a cancelled send would break the TLS
        # stream for every request on it (a stalled peer is cut by the PING check).
        if self._flushing:
            return
        self._flushing = True
        try:
            with trio.CancelScope(shield=True):
                while data := self._h2.data_to_send():
                    await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            self._closed = True
            raise ConnectionLost(f"connection lost: {error!r}") from error
        finally:
            self._flushing = False

    async def _receive_once(self) -> None:
        data = await self._stream.receive_some(_READ_SIZE)
        if not data:
            raise trio.BrokenResourceError("peer closed the connection")
        self._last_received = trio.current_time()
        for event in self._h2.receive_data(data):
            self._handle(event)
        await self._flush()

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            exchange = self._exchanges.get(event.stream_id)
            if exchange is not None:
                exchange.headers = event.headers
                for key, value in event.headers:
                    if key == b":status":
                        exchange.status = int(value)
        elif isinstance(event, h2.events.DataReceived):
            exchange = self._exchanges.get(event.stream_id)
            if exchange is not None:
                exchange.body.append(event.data)
            with contextlib.suppress(h2.exceptions.StreamClosedError):
                self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self._finish(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self._reset(event)
        elif isinstance(event, h2.events.WindowUpdated):
            self._wake_senders()
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._settings_seen = True
            self._on_capacity()
        elif isinstance(event, h2.events.PingAckReceived):
            self._pong.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._terminated(event)

    def _reset(self, event: h2.events.StreamReset) -> None:
        exchange = self._exchanges.get(event.stream_id)
        if exchange is None:
            return
        if event.error_code == ErrorCodes.REFUSED_STREAM:
            exchange.error = NotProcessed("stream refused by the peer")
        else:
            exchange.error = ConnectionLost(f"stream reset by the peer ({event.error_code!r})")
        self._finish(event.stream_id)

    def _terminated(self, event: h2.events.ConnectionTerminated) -> None:
        # Streams above last_stream_id were never processed: safe to retry elsewhere.
        # Those at or below it are finished normally if the peer keeps the socket open.
        self._goaway = True
        last = event.last_stream_id if event.last_stream_id is not None else 0
        log.info(
            "provider sent GOAWAY (%r, last stream %d, %r)",
            event.error_code,
            last,
            event.additional_data,
        )
        for stream_id in [sid for sid in self._exchanges if sid > last]:
            self._exchanges[stream_id].error = NotProcessed("GOAWAY before this stream")
            self._finish(stream_id)
        self._wake_senders()
        self._on_capacity()

    async def _ping_when_idle(self, interval: float, ping_timeout: float) -> None:
        while not self._closed:
            await trio.sleep(interval)
            if trio.current_time() - self._last_received < interval:
                continue
            self._pong = trio.Event()
            self._h2.ping(_PING)
            try:
                await self._flush()
            except ConnectionLost:
                return
            with trio.move_on_after(ping_timeout):
                await self._pong.wait()
            if not self._pong.is_set():
                log.warning("provider connection did not answer a PING; closing it")
                self._fail_all(ConnectionLost("PING unanswered"))
                self._closed = True
                await self._stream.aclose()
                return
