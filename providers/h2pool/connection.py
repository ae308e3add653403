"""One client HTTP/2 connection on a trio stream, driven by :class:`ClientProtocol`.

Many tasks issue requests concurrently. :meth:`ClientConnection.serve` runs the tasks
that own the connection: a reader feeding received bytes to the protocol and waking the
callers whose responses completed, a writer sending whatever the protocol has queued (so
the requests started in one scheduling round leave in one TLS write, not one each), a
timer failing requests whose response is overdue, and an idle pinger. A waiting caller
costs no cancel scope and no event: it parks itself and is rescheduled directly.

Stream accounting is ours: :attr:`ClientConnection.available` is the peer's current
``SETTINGS_MAX_CONCURRENT_STREAMS`` (which APNs lowers to 1 after a rejection), capped by
our own per-connection limit, minus the streams reserved by callers.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import trio

from providers.errors import ConnectionLost, NotProcessed, PeerProtocolError, ResponseTimeout
from providers.h2pool import protocol
from providers.h2pool.protocol import ClientProtocol, ErrorCode, Header, error_name

log = logging.getLogger("providers.h2pool")

_READ_SIZE = 65536
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


class _Exchange:
    __slots__ = ("body", "deadline", "error", "headers", "status", "task")

    def __init__(self, deadline: float) -> None:
        self.status = 0
        self.headers: Sequence[Header] = ()
        self.body: list[bytes] = []
        self.deadline = deadline
        self.error: Exception | None = None
        self.task: trio.lowlevel.Task | None = None  # the caller, while it waits


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
        self._protocol = ClientProtocol(scheme=scheme, authority=authority)
        self._max_streams = max_streams
        self._on_capacity = on_capacity
        self._on_release = on_release or on_capacity
        self._flushing = False
        self._exchanges: dict[int, _Exchange] = {}
        self._reserved = 0
        self._closed = False
        self._pong = trio.Event()
        self._write = trio.Event()
        self._timer = trio.CancelScope()
        self._last_received = trio.current_time()
        self.requests = 0

    @property
    def accepting(self) -> bool:
        """True while new requests may be started here."""
        return not self._closed and self._protocol.can_open

    @property
    def available(self) -> int:
        """Streams a new request could use now (0 once GOAWAY arrived or closed)."""
        if not self.accepting:
            return 0
        return min(self._protocol.peer_max_concurrent_streams, self._max_streams) - self._reserved

    @property
    def in_use(self) -> int:
        """Streams reserved by requests in flight."""
        return self._reserved

    def reserve(self) -> None:
        """Take one stream for a request about to start."""
        self._reserved += 1

    def release(self) -> None:
        """Give back a stream taken with :meth:`reserve`."""
        self._reserved -= 1
        self._on_release()

    async def handshake(self) -> None:
        """Send our preface and settings, then wait for the peer's first SETTINGS."""
        self._protocol.initiate()
        await self._flush()
        while not self._protocol.settings_received:
            await self._receive_once()

    async def serve(self, *, idle_ping_interval: float, ping_timeout: float) -> None:
        """Read until the connection ends; ping the peer when idle."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._ping_when_idle, idle_ping_interval, ping_timeout)
                nursery.start_soon(self._write_when_queued, nursery.cancel_scope)
                nursery.start_soon(self._expire_overdue)
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
                if self._protocol.goaway_received and not self._exchanges:
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            self._fail_all(ConnectionLost(f"connection lost: {error!r}"))
        except PeerProtocolError as error:
            log.warning("provider broke HTTP/2: %s; closing the connection", error)
            self._fail_all(error)
            with contextlib.suppress(ConnectionLost):
                await self._flush()  # the GOAWAY saying why
        except ConnectionLost as error:
            self._fail_all(error)

    async def aclose(self) -> None:
        """Say GOAWAY and close; requests still in flight fail with ConnectionLost."""
        if self._closed:
            return
        self._closed = True
        try:
            self._protocol.close()
            await self._flush()
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionLost):
            pass
        await self._stream.aclose()

    async def request(
        self, path: bytes, headers: Sequence[Header], body: bytes, *, response_timeout: float
    ) -> Response:
        """POST ``body`` to ``path`` on a reserved stream and wait for the whole response."""
        if self._closed:
            raise NotProcessed("connection closed before the request")
        stream_id = self._protocol.send_request(path, headers, body)
        self.requests += 1
        deadline = trio.current_time() + response_timeout
        exchange = _Exchange(deadline)
        self._exchanges[stream_id] = exchange
        if deadline < self._timer.deadline:
            self._timer.deadline = deadline
        self._wake_writer()
        exchange.task = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            exchange.task = None
            return trio.lowlevel.Abort.SUCCEEDED

        try:
            await trio.lowlevel.wait_task_rescheduled(abort)
        finally:
            if self._exchanges.pop(stream_id, None) is not None and not self._closed:
                # Cancelled while waiting: tell the peer; the writer sends it.
                self._protocol.reset_stream(stream_id, ErrorCode.CANCEL)
                self._wake_writer()
        if exchange.error is not None:
            raise exchange.error
        return Response(exchange.status, exchange.headers, b"".join(exchange.body))

    def _finish(self, stream_id: int) -> None:
        exchange = self._exchanges.pop(stream_id, None)
        if exchange is not None:
            self._wake(exchange)

    @staticmethod
    def _wake(exchange: _Exchange) -> None:
        if exchange.task is not None:
            trio.lowlevel.reschedule(exchange.task)
            exchange.task = None

    def _fail_all(self, error: Exception) -> None:
        for exchange in self._exchanges.values():
            if exchange.error is None:
                exchange.error = error
            self._wake(exchange)
        self._exchanges.clear()

    def _wake_writer(self) -> None:
        if not self._write.is_set():
            self._write.set()

    async def _write_when_queued(self, scope: trio.CancelScope) -> None:
        while True:
            await self._write.wait()
            self._write = trio.Event()
            try:
                await self._flush()
            except ConnectionLost as error:
                self._fail_all(error)
                scope.cancel()
                return

    async def _expire_overdue(self) -> None:
        # One timer for every exchange: it sleeps until the earliest deadline (a new
        # request only ever moves that deadline earlier), then fails what is overdue.
        while True:
            with self._timer:
                await trio.sleep_forever()
            now = trio.current_time()
            earliest = math.inf
            for stream_id, exchange in list(self._exchanges.items()):
                if exchange.deadline <= now:
                    del self._exchanges[stream_id]
                    exchange.error = ResponseTimeout("no complete response in time")
                    self._protocol.reset_stream(stream_id, ErrorCode.CANCEL)
                    self._wake(exchange)
                elif exchange.deadline < earliest:
                    earliest = exchange.deadline
            self._wake_writer()
            self._timer = trio.CancelScope(deadline=earliest)

    async def _flush(self) -> None:
        # Writes coalesce: while one task is sending, others only add to the protocol's
        # buffer and return; the sending task loops until the buffer is empty. One writer
        # keeps the frames in order. The send is shielded: a cancelled send would break
        # the TLS stream for every request on it (a stalled peer is cut by the PING check).
        if self._flushing:
            return
        self._flushing = True
        try:
            with trio.CancelScope(shield=True):
                while data := self._protocol.data_to_send():
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
        for event in self._protocol.receive_data(data):
            self._handle(event)
        if self._protocol.has_output:
            self._wake_writer()

    def _handle(self, event: protocol.Event) -> None:
        if type(event) is protocol.ResponseReceived:
            exchange = self._exchanges.get(event.stream_id)
            if exchange is not None:
                exchange.status = event.status
                exchange.headers = event.headers
                if event.ended:
                    self._finish(event.stream_id)
        elif type(event) is protocol.DataReceived:
            exchange = self._exchanges.get(event.stream_id)
            if exchange is not None:
                exchange.body.append(event.data)
                if event.ended:
                    self._finish(event.stream_id)
        elif type(event) is protocol.StreamEnded:
            self._finish(event.stream_id)
        elif type(event) is protocol.StreamReset:
            self._reset(event)
        elif type(event) is protocol.SettingsChanged:
            self._on_capacity()
        elif type(event) is protocol.PingAcknowledged:
            self._pong.set()
        elif type(event) is protocol.GoAwayReceived:
            self._terminated(event)

    def _reset(self, event: protocol.StreamReset) -> None:
        exchange = self._exchanges.get(event.stream_id)
        if exchange is None:
            return
        if event.error_code == ErrorCode.REFUSED_STREAM:
            exchange.error = NotProcessed("stream refused by the peer")
        else:
            exchange.error = ConnectionLost(
                f"stream reset by the peer ({error_name(event.error_code)})"
            )
        self._finish(event.stream_id)

    def _terminated(self, event: protocol.GoAwayReceived) -> None:
        # Streams above last_stream_id were never processed: safe to retry elsewhere.
        # Those at or below it are finished normally if the peer keeps the socket open.
        last = event.last_stream_id
        log.info(
            "provider sent GOAWAY (%s, last stream %d, %r)",
            error_name(event.error_code),
            last,
            event.debug_data,
        )
        for stream_id in [sid for sid in self._exchanges if sid > last]:
            self._exchanges[stream_id].error = NotProcessed("GOAWAY before this stream")
            self._finish(stream_id)
        self._on_capacity()

    async def _ping_when_idle(self, interval: float, ping_timeout: float) -> None:
        while not self._closed:
            await trio.sleep(interval)
            if trio.current_time() - self._last_received < interval:
                continue
            self._pong = trio.Event()
            self._protocol.ping(_PING)
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
