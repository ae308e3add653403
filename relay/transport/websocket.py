"""The server end of a gateway WebSocket: wsproto driven over a trio stream.

The gateway does not go through hypercorn's ASGI WebSocket: there, pings and pongs never
reach the application (so no heartbeat can be measured), and frame writes cannot be
interrupted. Here every inbound byte counts as liveness, pings are ours to send, and the
connection can always be cut.

Writes are serialised by a lock. The session's writer task is the only one sending data
frames; the reader answers pings and the close handshake, and the heartbeat sends pings,
each between two data frames at worst, so control frames are never stuck behind the
outbound queue.
"""

from __future__ import annotations

import logging
import struct
from collections import deque

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from relay.transport.listener import PeekedStream

log = logging.getLogger("relay.gateway")

MESSAGE_TOO_BIG = 1009
_RECEIVE_BYTES = 64 * 1024
_CLOSE_WAIT_SECS = 2.0
# Below this a frame is copied behind its header (one write); above, written after it.
_SEPARATE_WRITE_BYTES = 64 * 1024
_FIN_BINARY = 0x82


def binary_frame_head(length: int) -> bytes:
    """The header of an unmasked, final, binary frame of ``length`` payload bytes: what a
    server sends with no extension negotiated (RFC 6455 §5.2)."""
    if length < 126:
        return bytes((_FIN_BINARY, length))
    if length < 1 << 16:
        return struct.pack("!BBH", _FIN_BINARY, 126, length)
    return struct.pack("!BBQ", _FIN_BINARY, 127, length)


class ServerWebSocket:
    """One WebSocket connection accepted by the gateway."""

    def __init__(self, stream: PeekedStream, *, max_message_bytes: int) -> None:
        self._stream = stream
        self._protocol = WSConnection(ConnectionType.SERVER)
        self._max_message_bytes = max_message_bytes
        self._events: deque[Event] = deque()
        self._message = bytearray()
        self._send_lock = trio.Lock()
        self._eof = False
        self.last_received = trio.current_time()

    async def _receive_events(self) -> bool:
        """Read from the peer into the event queue; False once the stream has ended."""
        if self._eof:
            return False
        try:
            data = await self._stream.receive_some(_RECEIVE_BYTES)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self._eof = True
            return False
        self.last_received = trio.current_time()
        try:
            self._protocol.receive_data(data)
        except RemoteProtocolError as error:
            log.debug("gateway peer broke the protocol: %s", error)
            if error.event_hint is not None:
                await self._send_event(error.event_hint)
            self._eof = True
            return False
        self._events.extend(self._protocol.events())
        return True

    async def handshake(self) -> Request | None:
        """The upgrade request, or None if the peer sent none (a 400 was sent if invalid)."""
        while True:
            while self._events:
                event = self._events.popleft()
                if isinstance(event, Request):
                    return event
            if not await self._receive_events():
                return None

    async def accept(self, headers: list[tuple[bytes, bytes]]) -> None:
        """Complete the handshake (101), with ``headers`` on the response."""
        await self._send_event(AcceptConnection(extra_headers=headers))

    async def reject(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """Refuse the handshake with a plain HTTP response."""
        headers = [*headers, (b"content-length", str(len(body)).encode())]
        await self._send_event(RejectConnection(status_code=status, headers=headers, has_body=True))
        await self._send_event(RejectData(data=body))

    async def receive(self) -> bytes | str | None:
        """The next message, or None once the peer has closed or gone.

        Pings are answered and the peer's close is acknowledged on the way.
        """
        while True:
            while self._events:
                event = self._events.popleft()
                if isinstance(event, BytesMessage | TextMessage):
                    message = self._collect(event)
                    if message is not None:
                        return message
                elif isinstance(event, Ping):
                    await self._send_event(event.response())
                elif isinstance(event, CloseConnection):
                    if self._protocol.state is ConnectionState.REMOTE_CLOSING:
                        await self._send_event(event.response())
                    return None
            if self._message_too_big():
                await self.close(MESSAGE_TOO_BIG, "Message too big")
                return None
            if not await self._receive_events():
                return None

    def _collect(self, event: BytesMessage | TextMessage) -> bytes | str | None:
        is_text = isinstance(event, TextMessage)
        self._message += event.data.encode() if isinstance(event, TextMessage) else event.data
        if not event.message_finished or self._message_too_big():
            return None
        data = bytes(self._message)
        self._message.clear()
        return data.decode(errors="replace") if is_text else data

    def _message_too_big(self) -> bool:
        return len(self._message) > self._max_message_bytes

    async def send(self, frame: bytes) -> None:
        """Send one binary message (dropped once the connection is closing).

        Framed here rather than by wsproto, whose encoder copies the payload behind the
        header: frames are up to ``WS_MAX_BATCH_BYTES``, and a peer that stops reading
        would pin that copy as well as the frame.
        """
        if self._protocol.state is not ConnectionState.OPEN:
            return
        head = binary_frame_head(len(frame))
        if len(frame) < _SEPARATE_WRITE_BYTES:
            await self._send_bytes(head + frame)
        else:
            await self._send_bytes(head, frame)

    async def ping(self) -> None:
        """Send an empty ping."""
        if self._protocol.state is ConnectionState.OPEN:
            await self._send_event(Ping())

    async def close(self, code: int, reason: str) -> None:
        """Start the close handshake and wait (briefly) for the peer's answer."""
        if self._protocol.state is not ConnectionState.OPEN:
            return
        await self._send_event(CloseConnection(code=code, reason=reason))
        with trio.move_on_after(_CLOSE_WAIT_SECS):
            while not self._closed_by_both():
                if not await self._receive_events():
                    break
                self._events.clear()

    def _closed_by_both(self) -> bool:
        return self._protocol.state is ConnectionState.CLOSED

    def abort(self) -> None:
        """Drop the TCP connection at once."""
        self._stream.abort()

    async def _send_event(self, event: Event) -> None:
        try:
            data = self._protocol.send(event)
        except LocalProtocolError:
            return  # the connection closed in between: nothing left to say
        await self._send_bytes(data)

    async def _send_bytes(self, *chunks: bytes) -> None:
        async with self._send_lock:
            try:
                for chunk in chunks:
                    await self._stream.send_all(chunk)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._eof = True
