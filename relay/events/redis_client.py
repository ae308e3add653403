"""A minimal Redis client on trio streams: one connection, commands and pub/sub.

Every Redis client for Python either needs asyncio or hides reconnects (see
``spec/scale-out-notes.md``); the bus needs neither, only a connection whose failures it
sees, so that it can reconnect and resynchronise. The protocol is :mod:`relay.events.resp`.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import trio

from relay.events.resp import ErrorReply, ProtocolError, Reply, ReplyParser, encode_command

_RECEIVE_BYTES = 65536
# A dead peer that sends no FIN (a partition) is noticed within about 5 s by TCP itself.
_KEEPALIVE = ((socket.TCP_KEEPIDLE, 2), (socket.TCP_KEEPINTVL, 1), (socket.TCP_KEEPCNT, 3))


class RedisError(Exception):
    """Redis is unreachable, answered an error, or broke the protocol."""


@dataclass(frozen=True)
class RedisAddress:
    """Where Redis is: ``redis://[[user]:password@]host[:port][/db]``."""

    host: str
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> RedisAddress:
        """The address in a ``redis://`` URL (ValueError if it is not one)."""
        parts = urlsplit(url)
        if parts.scheme != "redis" or not parts.hostname:
            raise ValueError("expected redis://host[:port][/db]")
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ValueError("the database must be a number")
        return cls(
            parts.hostname,
            parts.port or 6379,
            int(path or 0),
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )

    def __str__(self) -> str:
        # Never the password: this goes into logs.
        return f"redis://{self.host}:{self.port}/{self.db}"


class RedisConnection:
    """One connection. Not for concurrent use: one task sends and reads."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._parser = ReplyParser()
        self._ready: list[Reply | ErrorReply] = []

    @classmethod
    async def open(cls, address: RedisAddress, *, within: float) -> RedisConnection:
        """Connect, authenticate and select the database within ``within`` seconds."""
        try:
            with trio.fail_after(within):
                stream = await trio.open_tcp_stream(address.host, address.port)
        except (OSError, trio.TooSlowError) as error:
            raise RedisError(f"cannot connect to {address}: {error or 'timed out'}") from None
        connection = cls(stream)
        try:
            stream.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            for option, value in _KEEPALIVE:
                stream.setsockopt(socket.IPPROTO_TCP, option, value)
            with trio.fail_after(within):
                if address.password is not None:
                    user = [address.username] if address.username else []
                    await connection.call("AUTH", *user, address.password)
                if address.db:
                    await connection.call("SELECT", address.db)
        except BaseException as error:
            with trio.CancelScope(shield=True):
                await stream.aclose()
            if isinstance(error, trio.TooSlowError):
                raise RedisError(f"{address} did not answer") from None
            raise
        return connection

    async def send(self, *commands: Sequence[bytes | str | int]) -> None:
        """Write commands (pipelined) without reading their replies."""
        data = b"".join(encode_command(*command) for command in commands)
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            raise RedisError(f"connection lost: {error}") from None

    async def reply(self) -> Reply:
        """The next reply (:class:`RedisError` for an error reply or a lost connection)."""
        while not self._ready:
            try:
                data = await self._stream.receive_some(_RECEIVE_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
                raise RedisError(f"connection lost: {error}") from None
            if not data:
                raise RedisError("connection closed by Redis")
            try:
                self._parser.feed(data)
                self._ready.extend(self._parser.replies())
            except ProtocolError as error:
                raise RedisError(f"not a Redis reply: {error}") from None
        reply = self._ready.pop(0)
        if isinstance(reply, ErrorReply):
            raise RedisError(reply.message)
        return reply

    async def call(self, *command: bytes | str | int) -> Reply:
        """Send one command and read its reply."""
        await self.send(command)
        return await self.reply()

    async def aclose(self) -> None:
        """Close the connection."""
        await self._stream.aclose()
