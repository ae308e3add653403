"""A WebSocket client by hand (wsproto over trio), for what trio-websocket hides:
seeing the server's pings, and never answering them."""

from __future__ import annotations

import urllib.parse

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
)


class RawWebSocket:
    """A client connection that reports every protocol event and answers nothing."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.protocol = WSConnection(ConnectionType.CLIENT)
        self._pending: list[Event] = []
        self._eof = False

    @classmethod
    async def open(
        cls,
        api_url: str,
        target: str,
        *,
        before: bytes = b"",
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> tuple[RawWebSocket, Event | None]:
        """Send a handshake for ``target``; returns the connection and the server's answer.

        ``before`` is sent first on the same connection (a complete HTTP request whose
        response is read and skipped).
        """
        url = urllib.parse.urlsplit(api_url)
        assert url.hostname is not None
        assert url.port is not None
        connection = cls(await trio.open_tcp_stream(url.hostname, url.port))
        if before:
            await connection.stream.send_all(before)
            await connection._skip_response()
        request = Request(host=url.netloc, target=target, extra_headers=headers or [])
        await connection.stream.send_all(connection.protocol.send(request))
        return connection, await connection.next_event()

    async def _skip_response(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await self.stream.receive_some(1)
            assert chunk, "connection closed before the response"
            head += chunk
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length:")
        )
        while length:
            length -= len(await self.stream.receive_some(length))

    @classmethod
    async def connect(cls, api_url: str, ticket: str) -> RawWebSocket:
        """Open the gateway with ``ticket``; raises if the server does not accept."""
        connection, event = await cls.open(api_url, f"/v1/gateway?ticket={ticket}")
        if not isinstance(event, AcceptConnection):
            await connection.aclose()
            raise AssertionError(f"handshake refused: {event!r}")
        return connection

    @classmethod
    async def refusal(
        cls,
        api_url: str,
        target: str,
        *,
        before: bytes = b"",
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        """Expect the handshake to be refused: (status, headers, body)."""
        connection, event = await cls.open(api_url, target, before=before, headers=headers)
        try:
            if not isinstance(event, RejectConnection):
                raise AssertionError(f"handshake not refused: {event!r}")
            body = b""
            if event.has_body:
                while isinstance(data := await connection.next_event(), RejectData):
                    body += data.data
                    if data.body_finished:
                        break
            return event.status_code, {k.lower(): v for k, v in event.headers}, body
        finally:
            await connection.aclose()

    async def next_event(self) -> Event | None:
        """The next protocol event, or None once the server has closed the TCP connection."""
        while not self._pending:
            if self._eof:
                return None
            try:
                data = await self.stream.receive_some()
            except trio.BrokenResourceError:
                data = b""
            self._eof = not data
            self.protocol.receive_data(data or None)
            self._pending.extend(self.protocol.events())
        return self._pending.pop(0)

    async def send(self, data: bytes) -> None:
        """Send one binary message."""
        await self.stream.send_all(self.protocol.send(BytesMessage(data=data)))

    async def ping(self, payload: bytes) -> None:
        """Send a ping."""
        await self.stream.send_all(self.protocol.send(Ping(payload=payload)))

    async def aclose(self) -> None:
        """Drop the TCP connection."""
        await self.stream.aclose()


__all__ = [
    "AcceptConnection",
    "BytesMessage",
    "CloseConnection",
    "Ping",
    "Pong",
    "RawWebSocket",
    "RejectConnection",
]
