"""RESP2, the Redis wire protocol, sans-IO: commands out, replies in.

Only what the event bus needs: commands are arrays of bulk strings; replies are simple
strings, errors, integers, bulk strings and (nested) arrays. :class:`ReplyParser` takes
bytes as they arrive and yields complete replies, like h11 and h2 do for their protocols.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

Reply = bytes | int | None | list["Reply"]

# A reply bigger than this is refused rather than buffered (events are a few KiB).
MAX_REPLY_BYTES = 16 * 1024 * 1024


class ProtocolError(Exception):
    """The peer sent something that is not RESP2 (or too much of it)."""


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """A ``-ERR ...`` reply."""

    message: str


def encode_command(*parts: bytes | str | int) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class ReplyParser:
    """Incremental parser: :meth:`feed` bytes, iterate :meth:`replies`."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        """Bytes received from the server."""
        self._buffer += data
        if len(self._buffer) > MAX_REPLY_BYTES:
            raise ProtocolError("reply too large")

    def replies(self) -> Iterator[Reply | ErrorReply]:
        """Every complete reply buffered so far, in order."""
        while True:
            parsed = self._parse(0)
            if parsed is None:
                return
            reply, end = parsed
            del self._buffer[:end]
            yield reply

    def _line(self, start: int) -> tuple[bytes, int] | None:
        end = self._buffer.find(b"\r\n", start)
        if end < 0:
            return None
        return bytes(self._buffer[start:end]), end + 2

    def _parse(self, start: int) -> tuple[Reply | ErrorReply, int] | None:
        line = self._line(start)
        if line is None:
            return None
        head, after = line
        if not head:
            raise ProtocolError("empty reply line")
        kind, rest = head[:1], head[1:]
        if kind == b"+":
            return rest, after
        if kind == b"-":
            return ErrorReply(rest.decode("utf-8", "replace")), after
        if kind == b":":
            return _integer(rest), after
        if kind == b"$":
            size = _integer(rest)
            if size < 0:
                return None, after
            if len(self._buffer) < after + size + 2:
                return None
            return bytes(self._buffer[after : after + size]), after + size + 2
        if kind == b"*":
            count = _integer(rest)
            if count < 0:
                return None, after
            items: list[Reply] = []
            position = after
            for _ in range(count):
                parsed = self._parse(position)
                if parsed is None:
                    return None
                item, position = parsed
                if isinstance(item, ErrorReply):
                    raise ProtocolError("an error inside an array")
                items.append(item)
            return items, position
        raise ProtocolError(f"unknown reply type {kind!r}")


def _integer(text: bytes) -> int:
    try:
        return int(text)
    except ValueError:
        raise ProtocolError(f"not an integer: {text!r}") from None
