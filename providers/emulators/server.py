"""The HTTP/2 server under every emulator: trio + h2, over TLS (ALPN h2) or h2c.

An emulator is a :class:`Handler`: it turns a complete :class:`Request` into a
:class:`Reply`. The server owns the connection-level behaviour: it advertises
``SETTINGS_MAX_CONCURRENT_STREAMS`` and, like APNs, can drop it to 1 after a rejected
request and restore it after an accepted one; it carries out GOAWAY and stall replies.
"""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack.hpack
import hpack.huffman_table
import trio
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

log = logging.getLogger("providers.emulators")

_READ_SIZE = 65536


@dataclass(frozen=True, slots=True)
class Request:
    """A complete request as the emulator received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: str = ""
    """The client's address (which host sent it, in multi-host tests)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """What to answer. ``goaway`` and ``stall`` ask the server for connection faults."""

    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    accepted: bool = True
    goaway: bool = False
    stall: float = 0.0


class Handler(Protocol):
    """An emulator's request logic."""

    def handle(self, request: Request) -> Reply:
        """Answer ``request``."""


@dataclass
class ServerOptions:
    """Connection-level behaviour."""

    max_concurrent_streams: int = 1000
    drop_streams_on_reject: bool = False
    # h2's checks of every request's and reply's headers; benchmarks turn them off so
    # that the emulator, not the client measured, is not the limit.
    check_headers: bool = True
    # Observations, for tests and the benchmark.
    connections: int = field(default=0)
    peak_streams: int = field(default=0)
    pings: int = field(default=0)


@functools.lru_cache(maxsize=4096)
def _decode_huffman_once(data: bytes) -> bytes:
    return hpack.huffman_table.decode_huffman(data)


def remember_huffman_decoding() -> None:
    """Make hpack, in this process, decode each Huffman-coded string once.

    Clients send the same provider token and topic with every request, and hpack decodes
    them in pure Python every time: a third of a benchmark emulator's CPU, enough to make
    it, not the client measured, the limit. Only the standalone emulator process does
    this (``relay emulator --no-header-checks``); the decoded values are the same.
    """

    def decode_huffman(huffman_string: bytes | bytearray | memoryview | None) -> bytes:
        return _decode_huffman_once(bytes(huffman_string or b""))

    setattr(hpack.hpack, "decode_huffman", decode_huffman)  # noqa: B010 (not re-exported)


class _Connection:
    def __init__(self, stream: trio.abc.Stream, handler: Handler, options: ServerOptions) -> None:
        self._stream = stream
        self._peer = _peer_of(stream)
        self._handler = handler
        self._options = options
        self._h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=False,
                header_encoding="utf-8",
                validate_inbound_headers=options.check_headers,
                validate_outbound_headers=options.check_headers,
                normalize_outbound_headers=options.check_headers,
            )
        )
        self._requests: dict[int, tuple[dict[str, str], list[bytes]]] = {}
        # Reply bodies beyond the client's flow-control window, sent as it opens.
        self._unsent: dict[int, bytes] = {}
        self._lowered = False
        self._closing = False
        self._in_flight = 0
        self._send_lock = trio.Lock()

    async def run(self, nursery: trio.Nursery) -> None:
        try:
            await self._serve(nursery)
        except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError):
            pass  # the client left
        except h2.exceptions.ProtocolError as error:
            log.info("emulator connection ended on a protocol error: %s", error)

    async def _serve(self, nursery: trio.Nursery) -> None:
        # Initial values, not the setter: a set value is pending until acknowledged and
        # would not be in the first SETTINGS frame.
        self._h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: self._options.max_concurrent_streams
            },
        )
        self._h2.initiate_connection()
        await self._flush()
        while not self._closing:
            data = await self._stream.receive_some(_READ_SIZE)
            if not data:
                return
            try:
                events = self._h2.receive_data(data)
            except h2.exceptions.TooManyStreamsError:
                # What APNs does when a client exceeds its advertised limit.
                self._h2.close_connection(
                    ErrorCodes.PROTOCOL_ERROR, b"Maximum active streams violated"
                )
                await self._flush()
                return
            for event in events:
                self._on_event(event, nursery)
            await self._flush()
        # Read what the client still sends before closing: closing a socket with unread
        # data makes the kernel send RST, which can destroy the GOAWAY in flight.
        with trio.move_on_after(1.0):
            while await self._stream.receive_some(_READ_SIZE):
                pass

    def _on_event(self, event: h2.events.Event, nursery: trio.Nursery) -> None:
        if isinstance(event, h2.events.RequestReceived):
            headers = {str(k): str(v) for k, v in event.headers}
            self._requests[event.stream_id] = (headers, [])
            self._in_flight += 1
            self._options.peak_streams = max(self._options.peak_streams, self._in_flight)
        elif isinstance(event, h2.events.PingReceived):
            self._options.pings += 1
        elif isinstance(event, h2.events.DataReceived):
            entry = self._requests.get(event.stream_id)
            if entry is not None:
                entry[1].append(event.data)
            self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            entry = self._requests.pop(event.stream_id, None)
            if entry is not None and not self._closing:
                self._dispatch(event.stream_id, entry[0], b"".join(entry[1]), nursery)
        elif isinstance(event, h2.events.WindowUpdated):
            waiting = list(self._unsent) if event.stream_id == 0 else [event.stream_id]
            for stream_id in waiting:
                if stream_id in self._unsent:
                    self._send_body(stream_id, self._unsent.pop(stream_id))
        elif isinstance(event, h2.events.StreamReset):
            self._unsent.pop(event.stream_id, None)
            if self._requests.pop(event.stream_id, None) is not None:
                self._in_flight -= 1

    def _dispatch(
        self, stream_id: int, headers: dict[str, str], body: bytes, nursery: trio.Nursery
    ) -> None:
        request = Request(
            headers.get(":method", ""), headers.get(":path", ""), headers, body, self._peer
        )
        reply = self._handler.handle(request)
        if reply.goaway:
            self._h2.close_connection(ErrorCodes.NO_ERROR, last_stream_id=max(0, stream_id - 2))
            self._closing = True
            return
        if reply.stall > 0:
            nursery.start_soon(self._answer_later, stream_id, reply)
            return
        self._answer(stream_id, reply)

    async def _answer_later(self, stream_id: int, reply: Reply) -> None:
        await trio.sleep(reply.stall)
        try:
            self._answer(stream_id, reply)
            await self._flush()
        except (h2.exceptions.ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client reset the stream or left

    def _answer(self, stream_id: int, reply: Reply) -> None:
        self._in_flight -= 1
        if self._options.drop_streams_on_reject and reply.accepted == self._lowered:
            self._lowered = not reply.accepted
            limit = 1 if self._lowered else self._options.max_concurrent_streams
            self._h2.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: limit})
        headers = [(":status", str(reply.status)), *reply.headers]
        if reply.body:
            headers.append(("content-length", str(len(reply.body))))
        try:
            self._h2.send_headers(stream_id, headers, end_stream=not reply.body)
        except h2.exceptions.ProtocolError:
            return  # the stream or the connection is gone
        if reply.body:
            self._send_body(stream_id, reply.body)

    def _send_body(self, stream_id: int, body: bytes) -> None:
        """Send what the flow-control windows allow; keep the rest for a window update."""
        try:
            while body:
                size = min(
                    len(body),
                    self._h2.local_flow_control_window(stream_id),
                    self._h2.max_outbound_frame_size,
                )
                if size <= 0:
                    self._unsent[stream_id] = body
                    return
                self._h2.send_data(stream_id, body[:size], end_stream=size == len(body))
                body = body[size:]
        except h2.exceptions.ProtocolError:
            pass  # the stream or the connection is gone

    async def _flush(self) -> None:
        async with self._send_lock:
            data = self._h2.data_to_send()
            if data:
                await self._stream.send_all(data)


def _peer_of(stream: trio.abc.Stream) -> str:
    transport = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
    if isinstance(transport, trio.SocketStream):
        return str(transport.socket.getpeername()[0])
    return ""


async def _serve_connection(
    stream: trio.abc.Stream, handler: Handler, options: ServerOptions
) -> None:
    options.connections += 1
    try:
        if isinstance(stream, trio.SSLStream):
            await stream.do_handshake()
            if stream.selected_alpn_protocol() != "h2":
                return
        async with trio.open_nursery() as nursery:
            await _Connection(stream, handler, options).run(nursery)
            nursery.cancel_scope.cancel()
    except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError):
        pass  # the TLS handshake failed
    finally:
        await trio.aclose_forcefully(stream)


async def serve(
    handler: Handler,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None,
    options: ServerOptions | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``handler`` until cancelled; reports the bound port through ``task_status``."""
    options = options or ServerOptions()
    listeners: list[trio.SocketListener] = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    served: Sequence[trio.abc.Listener[trio.abc.Stream]] = (
        [trio.SSLListener(listener, ssl_context, https_compatible=True) for listener in listeners]
        if ssl_context is not None
        else listeners
    )

    async def on_connection(stream: trio.abc.Stream) -> None:
        await _serve_connection(stream, handler, options)

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, on_connection, served)
        task_status.started(bound)
