"""A minimal HTTP/1.1 keep-alive client on trio sockets, for load generation.

httpx costs about 1 ms of CPU per request under trio, more than the server under test;
this client writes pre-built requests and parses only the status line, headers and a
``content-length`` body, so the server is what a benchmark measures.
"""

from __future__ import annotations

import trio


class ProtocolError(RuntimeError):
    """The server answered something this client does not parse."""


def request_bytes(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """A complete request (``host`` and ``content-length`` added)."""
    lines = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One keep-alive connection: send a request, read its response."""

    def __init__(self, stream: trio.SocketStream, host: str, port: int) -> None:
        self._stream = stream
        self._host, self._port = host, port
        self._buffer = bytearray()
        self._closing = False
        self.headers: dict[str, str] = {}
        """The last response's headers (names in lower case)."""

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        """Connect."""
        return cls(await trio.open_tcp_stream(host, port), host, port)

    async def aclose(self) -> None:
        """Close the connection."""
        await self._stream.aclose()

    async def _fill(self) -> None:
        chunk = await self._stream.receive_some(65536)
        if not chunk:
            raise ProtocolError("connection closed by the server")
        self._buffer += chunk

    async def request(self, data: bytes) -> tuple[int, bytes]:
        """Send one request; its status and body. A connection the server announced it
        would close (hypercorn ends keep-alive after 1,000 requests) is reopened first."""
        if self._closing:
            await self._stream.aclose()
            self._stream = await trio.open_tcp_stream(self._host, self._port)
            self._buffer.clear()
            self._closing = False
        await self._stream.send_all(data)
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            await self._fill()
        head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        status = int(head[0].split(" ", 2)[1])
        self.headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        if "transfer-encoding" in self.headers:
            raise ProtocolError("chunked responses are not supported")
        length = int(self.headers.get("content-length", "0"))
        if self.headers.get("connection", "").lower() == "close":
            self._closing = True
        while len(self._buffer) < length:
            await self._fill()
        body = bytes(self._buffer[:length])
        del self._buffer[:length]
        return status, body
