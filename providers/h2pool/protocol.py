"""The client side of HTTP/2 (RFC 9113) for request/response exchanges, sans-IO.

A plain class in the style of h2: bytes in (:meth:`ClientProtocol.receive_data`), events
out, bytes to send collected for the caller (:meth:`ClientProtocol.data_to_send`). It is
written for push providers, where one connection carries thousands of small POSTs, and
does only what that needs, which is what makes it cheap:

* a request's header block is encoded from cached field encodings
  (:mod:`providers.h2pool.hpack_cache`) and framed by hand: no per-request header
  validation, no stream state machine objects, no frame objects;
* open streams are a dict, so counting them is ``len`` (h2 scans every stream);
* request bodies that do not fit the flow-control windows wait inside the protocol and
  leave as soon as a ``WINDOW_UPDATE`` or ``SETTINGS`` opens a window, with no event
  round trip through the caller;
* the common response, one ``HEADERS`` frame with ``END_STREAM``, is one event.

Server push is refused (``SETTINGS_ENABLE_PUSH`` 0, a ``PUSH_PROMISE`` is a connection
error). Responses are decoded with ``hpack``'s decoder, which keeps the peer's dynamic
table in step even for streams we have already abandoned.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from hpack import Decoder
from hpack.exceptions import HPACKError

from providers.errors import NotProcessed, PeerProtocolError
from providers.h2pool.hpack_cache import HeaderBlockEncoder

Header = tuple[bytes, bytes]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DEFAULT_WINDOW = 65_535
DEFAULT_MAX_FRAME = 16_384
MAX_WINDOW = 2**31 - 1
_MAX_STREAM_ID = 2**31 - 1
_FRAME_HEADER = struct.Struct(">HBBBL")  # length (24 bits as 16 + 8), type, flags, stream
_U32 = struct.Struct(">L")
_SETTING = struct.Struct(">HL")

_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS = 0, 1, 2, 3, 4
_PUSH_PROMISE, _PING, _GOAWAY, _WINDOW_UPDATE, _CONTINUATION = 5, 6, 7, 8, 9
_END_STREAM = _ACK = 0x1
_END_HEADERS = 0x4
_PADDED = 0x8
_PRIORITY_FLAG = 0x20

_TABLE_SIZE_ZERO = b"\x20"  # HPACK dynamic table size update to 0 (RFC 7541 §6.3)
_HEADER_TABLE_SIZE, _ENABLE_PUSH, _MAX_CONCURRENT_STREAMS = 1, 2, 3
_INITIAL_WINDOW_SIZE, _MAX_FRAME_SIZE = 4, 5


class ErrorCode(IntEnum):
    """HTTP/2 error codes (RFC 9113 §7)."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


def error_name(code: int) -> str:
    """The name of an error code, or its number when it is not one we know."""
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"0x{code:x}"


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """The response headers of a stream; ``ended`` when no body follows."""

    stream_id: int
    status: int
    headers: Sequence[Header]
    ended: bool


@dataclass(frozen=True, slots=True)
class DataReceived:
    """Part of a response body; ``ended`` on the last part."""

    stream_id: int
    data: bytes
    ended: bool


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """A response ended with trailers (which are dropped)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamReset:
    """The peer reset a stream, or we reset it because the peer broke the protocol on it."""

    stream_id: int
    error_code: int


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    """The peer's settings changed (its first SETTINGS frame included)."""


@dataclass(frozen=True, slots=True)
class PingAcknowledged:
    """The peer answered one of our PINGs."""

    data: bytes


@dataclass(frozen=True, slots=True)
class GoAwayReceived:
    """The peer is closing: streams above ``last_stream_id`` were not processed."""

    last_stream_id: int
    error_code: int
    debug_data: bytes


Event = (
    ResponseReceived
    | DataReceived
    | StreamEnded
    | StreamReset
    | SettingsChanged
    | PingAcknowledged
    | GoAwayReceived
)


class _Stream:
    __slots__ = ("body", "responded", "send_window", "unacknowledged")

    def __init__(self, send_window: int) -> None:
        self.send_window = send_window
        self.body: memoryview | None = None  # what is still to be sent
        self.responded = False
        self.unacknowledged = 0  # body bytes received and not yet given back to the peer


class _ConnectionError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class ClientProtocol:
    """One HTTP/2 client connection's state; see the module docstring."""

    def __init__(
        self,
        *,
        scheme: bytes,
        authority: bytes,
        stream_window: int = 1 << 20,
        connection_window: int = 1 << 24,
    ) -> None:
        self._encoder = HeaderBlockEncoder()
        self._prefix = self._encoder.encode(
            [(b":method", b"POST"), (b":scheme", scheme), (b":authority", authority)]
        )
        self._decoder = Decoder()
        self._out: list[bytes] = []
        self._buffer = bytearray()
        self._streams: dict[int, _Stream] = {}
        self._blocked: dict[int, None] = {}  # streams with body left to send, in order
        self._next_stream_id = 1
        self._size_update_due = True
        self._continuing: tuple[int, int, list[bytes]] | None = None
        self._stream_window = stream_window
        self._connection_window = DEFAULT_WINDOW + connection_window
        self._connection_increment = connection_window
        self._received_unacknowledged = 0
        self._send_window = DEFAULT_WINDOW
        self._peer_stream_window = DEFAULT_WINDOW
        self._max_frame = DEFAULT_MAX_FRAME
        self.peer_max_concurrent_streams = 2**31 - 1
        self.settings_received = False
        self.goaway_received = False

    @property
    def open_streams(self) -> int:
        """Streams opened and not yet closed."""
        return len(self._streams)

    @property
    def can_open(self) -> bool:
        """False once the peer sent GOAWAY or every stream id has been used."""
        return not self.goaway_received and self._next_stream_id <= _MAX_STREAM_ID

    @property
    def has_output(self) -> bool:
        """True when frames are queued for the peer."""
        return bool(self._out)

    def initiate(self) -> None:
        """Queue the connection preface, our SETTINGS and the connection window."""
        settings = _SETTING.pack(_ENABLE_PUSH, 0) + _SETTING.pack(
            _INITIAL_WINDOW_SIZE, self._stream_window
        )
        self._out.append(PREFACE)
        self._frame(_SETTINGS, 0, 0, settings)
        self._frame(_WINDOW_UPDATE, 0, 0, _U32.pack(self._connection_increment))

    def data_to_send(self) -> bytes:
        """Everything queued for the peer since the last call."""
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    def send_request(self, path: bytes, headers: Sequence[Header], body: bytes) -> int:
        """Open a stream for ``POST path`` and queue it with as much body as fits; its id.

        :class:`NotProcessed` if no stream can be opened here (GOAWAY, ids used up).
        """
        if not self.can_open:
            raise NotProcessed("this connection takes no new streams")
        stream_id = self._next_stream_id
        self._next_stream_id += 2
        block = self._prefix + self._encoder.path(path) + self._encoder.encode(headers)
        if self._size_update_due:
            self._size_update_due = False
            block = _TABLE_SIZE_ZERO + block
        flags = 0 if body else _END_STREAM
        limit = self._max_frame
        if len(block) <= limit:
            self._frame(_HEADERS, flags | _END_HEADERS, stream_id, block)
        else:
            self._frame(_HEADERS, flags, stream_id, block[:limit])
            for start in range(limit, len(block), limit):
                end_flag = _END_HEADERS if start + limit >= len(block) else 0
                self._frame(_CONTINUATION, end_flag, stream_id, block[start : start + limit])
        stream = _Stream(self._peer_stream_window)
        self._streams[stream_id] = stream
        if body:
            stream.body = memoryview(body)
            self._blocked[stream_id] = None
            self._send_bodies()
        return stream_id

    def reset_stream(self, stream_id: int, code: ErrorCode = ErrorCode.CANCEL) -> None:
        """Abandon a stream (queues RST_STREAM if it is still open)."""
        if self._streams.pop(stream_id, None) is not None:
            self._blocked.pop(stream_id, None)
            self._frame(_RST_STREAM, 0, stream_id, _U32.pack(code))

    def ping(self, data: bytes) -> None:
        """Queue a PING carrying 8 bytes of ``data``."""
        self._frame(_PING, 0, 0, data[:8].ljust(8, b"\0"))

    def close(self, code: ErrorCode = ErrorCode.NO_ERROR, debug: bytes = b"") -> None:
        """Queue GOAWAY (we accept no streams from the peer, so the last one is 0)."""
        self._frame(_GOAWAY, 0, 0, _U32.pack(0) + _U32.pack(code) + debug)

    def receive_data(self, data: bytes | bytearray) -> list[Event]:
        """Feed bytes from the peer; the events they complete.

        :class:`PeerProtocolError` if the peer broke the protocol: GOAWAY is queued and
        the connection is unusable.
        """
        buffer = self._buffer
        buffer += data
        events: list[Event] = []
        position = 0
        size = len(buffer)
        try:
            while size - position >= 9:
                high, low, kind, flags, stream_id = _FRAME_HEADER.unpack_from(buffer, position)
                length = high << 8 | low
                if length > DEFAULT_MAX_FRAME:
                    raise _ConnectionError(
                        ErrorCode.FRAME_SIZE_ERROR, f"a {length}-byte frame (limit 16384)"
                    )
                end = position + 9 + length
                if end > size:
                    break
                payload = bytes(buffer[position + 9 : end])
                position = end
                self._frame_received(kind, flags, stream_id & _MAX_STREAM_ID, payload, events)
        except _ConnectionError as error:
            self._buffer = bytearray()
            self.close(error.code, str(error).encode()[:200])
            raise PeerProtocolError(f"{error} ({error.code.name})") from error
        del buffer[:position]
        self._send_bodies()
        if self._received_unacknowledged >= self._connection_increment // 2:
            self._frame(_WINDOW_UPDATE, 0, 0, _U32.pack(self._received_unacknowledged))
            self._received_unacknowledged = 0
        return events

    def _frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        length = len(payload)
        self._out.append(_FRAME_HEADER.pack(length >> 8, length & 0xFF, kind, flags, stream_id))
        self._out.append(payload)

    def _frame_received(
        self, kind: int, flags: int, stream_id: int, payload: bytes, events: list[Event]
    ) -> None:
        if self._continuing is not None and kind != _CONTINUATION:
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "a header block was interrupted")
        if kind == _HEADERS:
            self._headers_received(flags, stream_id, payload, events)
        elif kind == _DATA:
            self._data_received(flags, stream_id, payload, events)
        elif kind == _CONTINUATION:
            self._continuation_received(flags, stream_id, payload, events)
        elif kind == _SETTINGS:
            self._settings_received(flags, stream_id, payload, events)
        elif kind == _WINDOW_UPDATE:
            self._window_update_received(stream_id, payload, events)
        elif kind == _RST_STREAM:
            if stream_id == 0 or len(payload) != 4:
                raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "a malformed RST_STREAM")
            if self._streams.pop(stream_id, None) is not None:
                self._blocked.pop(stream_id, None)
                events.append(StreamReset(stream_id, _U32.unpack(payload)[0]))
        elif kind == _PING:
            if stream_id != 0 or len(payload) != 8:
                raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "a malformed PING")
            if flags & _ACK:
                events.append(PingAcknowledged(payload))
            else:
                self._frame(_PING, _ACK, 0, payload)
        elif kind == _GOAWAY:
            if stream_id != 0 or len(payload) < 8:
                raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "a malformed GOAWAY")
            self.goaway_received = True
            last, code = (
                _U32.unpack_from(payload)[0] & _MAX_STREAM_ID,
                _U32.unpack_from(payload, 4)[0],
            )
            events.append(GoAwayReceived(last, code, payload[8:]))
        elif kind == _PUSH_PROMISE:
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE with push disabled")
        # PRIORITY and unknown frame types are ignored (RFC 9113 §4.1, §5.3.2).

    def _unpadded(self, flags: int, payload: bytes) -> bytes:
        if not flags & _PADDED:
            return payload
        if not payload or payload[0] >= len(payload):
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "padding longer than the frame")
        return payload[1 : len(payload) - payload[0]]

    def _headers_received(
        self, flags: int, stream_id: int, payload: bytes, events: list[Event]
    ) -> None:
        if stream_id == 0:
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0")
        block = self._unpadded(flags, payload)
        if flags & _PRIORITY_FLAG:
            block = block[5:]
        if flags & _END_HEADERS:
            self._header_block(stream_id, flags & _END_STREAM, block, events)
        else:
            self._continuing = (stream_id, flags & _END_STREAM, [block])

    def _continuation_received(
        self, flags: int, stream_id: int, payload: bytes, events: list[Event]
    ) -> None:
        if self._continuing is None or self._continuing[0] != stream_id:
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "an unexpected CONTINUATION")
        parts = self._continuing[2]
        parts.append(payload)
        if sum(map(len, parts)) > 1 << 20:
            raise _ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "a header block over 1 MiB")
        if flags & _END_HEADERS:
            ended = self._continuing[1]
            self._continuing = None
            self._header_block(stream_id, ended, b"".join(parts), events)

    def _header_block(self, stream_id: int, ended: int, block: bytes, events: list[Event]) -> None:
        try:
            headers: list[Header] = self._decoder.decode(block, raw=True)  # type: ignore[assignment]
        except HPACKError as error:
            raise _ConnectionError(ErrorCode.COMPRESSION_ERROR, f"HPACK: {error}") from error
        stream = self._streams.get(stream_id)
        if stream is None:
            if stream_id >= self._next_stream_id:
                raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on an idle stream")
            return  # a stream we abandoned: decoded only to keep the HPACK table in step
        if stream.responded:
            if not ended:
                self._stream_error(stream_id, events)
                return
            self._remote_ended(stream_id)
            events.append(StreamEnded(stream_id))
            return
        status = 0
        for name, value in headers:
            if name == b":status":
                status = int(value) if value.isdigit() else 0
                break
        if not 100 <= status <= 999:
            self._stream_error(stream_id, events)
            return
        if status < 200:
            return  # informational (100 Continue and the like)
        stream.responded = True
        if ended:
            self._remote_ended(stream_id)
        events.append(ResponseReceived(stream_id, status, headers, bool(ended)))

    def _data_received(
        self, flags: int, stream_id: int, payload: bytes, events: list[Event]
    ) -> None:
        if stream_id == 0:
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0")
        self._received_unacknowledged += len(payload)
        if self._received_unacknowledged > self._connection_window:
            raise _ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "the connection window overrun")
        data = self._unpadded(flags, payload)
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        if not stream.responded:
            self._stream_error(stream_id, events)
            return
        ended = bool(flags & _END_STREAM)
        if ended:
            self._remote_ended(stream_id)
        else:
            stream.unacknowledged += len(payload)
            if stream.unacknowledged > self._stream_window:
                self._stream_error(stream_id, events)
                return
            if stream.unacknowledged >= self._stream_window // 2:
                self._frame(_WINDOW_UPDATE, 0, stream_id, _U32.pack(stream.unacknowledged))
                stream.unacknowledged = 0
        events.append(DataReceived(stream_id, data, ended))

    def _remote_ended(self, stream_id: int) -> None:
        stream = self._streams.pop(stream_id)
        if stream.body is not None:
            # The peer answered before reading the whole body: stop sending it (§8.1).
            self._blocked.pop(stream_id, None)
            self._frame(_RST_STREAM, 0, stream_id, _U32.pack(ErrorCode.NO_ERROR))

    def _stream_error(self, stream_id: int, events: list[Event]) -> None:
        self.reset_stream(stream_id, ErrorCode.PROTOCOL_ERROR)
        events.append(StreamReset(stream_id, ErrorCode.PROTOCOL_ERROR))

    def _settings_received(
        self, flags: int, stream_id: int, payload: bytes, events: list[Event]
    ) -> None:
        if stream_id != 0 or len(payload) % 6:
            raise _ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "a malformed SETTINGS")
        if flags & _ACK:
            if payload:
                raise _ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "a SETTINGS ack with a body")
            return
        for offset in range(0, len(payload), 6):
            setting, value = _SETTING.unpack_from(payload, offset)
            if setting == _MAX_CONCURRENT_STREAMS:
                self.peer_max_concurrent_streams = value
            elif setting == _INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise _ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "a window over 2^31-1")
                delta = value - self._peer_stream_window
                self._peer_stream_window = value
                for stream in self._streams.values():
                    stream.send_window += delta
            elif setting == _MAX_FRAME_SIZE:
                if not DEFAULT_MAX_FRAME <= value <= 2**24 - 1:
                    raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "a bad MAX_FRAME_SIZE")
                self._max_frame = value
            elif setting == _HEADER_TABLE_SIZE:
                # Our blocks never use the dynamic table, but a decoder whose table limit
                # changed may insist on seeing a size update: the next block starts with one.
                self._size_update_due = True
        self._frame(_SETTINGS, _ACK, 0, b"")
        self.settings_received = True
        events.append(SettingsChanged())

    def _window_update_received(self, stream_id: int, payload: bytes, events: list[Event]) -> None:
        if len(payload) != 4:
            raise _ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "a malformed WINDOW_UPDATE")
        increment = _U32.unpack(payload)[0] & MAX_WINDOW
        if stream_id == 0:
            if increment == 0:
                raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "a zero window increment")
            self._send_window += increment
            if self._send_window > MAX_WINDOW:
                raise _ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "the window over 2^31-1")
            return
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        if increment == 0:
            self._stream_error(stream_id, events)
            return
        stream.send_window += increment
        if stream.send_window > MAX_WINDOW:
            self.reset_stream(stream_id, ErrorCode.FLOW_CONTROL_ERROR)
            events.append(StreamReset(stream_id, ErrorCode.FLOW_CONTROL_ERROR))

    def _send_bodies(self) -> None:
        # Bodies leave in the order their streams were opened, as far as the windows allow.
        if not self._blocked:
            return
        for stream_id in list(self._blocked):
            if self._send_window <= 0:
                return
            stream = self._streams[stream_id]
            body = stream.body
            assert body is not None
            while body and stream.send_window > 0 and self._send_window > 0:
                size = min(len(body), stream.send_window, self._send_window, self._max_frame)
                last = size == len(body)
                self._frame(_DATA, _END_STREAM if last else 0, stream_id, bytes(body[:size]))
                body = body[size:]
                stream.send_window -= size
                self._send_window -= size
            if body:
                stream.body = body
            else:
                stream.body = None
                del self._blocked[stream_id]
