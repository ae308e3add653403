"""A minimal Redis client on trio streams: one connection, commands and pub/sub.

Every Redis client for Python either needs asyncio or hides reconnects (see
``spec/scale-out-notes.md``); the bus needs neither, only a connection whose failures it
sees, so that it can reconnect and resynchronise. The protocol is :mod:`storage.redis.resp`.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

import trio

from storage.redis.address import RedisAddress as RedisAddress
from storage.redis.resp import ErrorReply, ProtocolError, Reply, ReplyParser, encode_command

_RECEIVE_BYTES = 65536
# A dead peer that sends no FIN (a partition) is noticed within about 5 s by TCP itself.
_KEEPALIVE = ((socket.TCP_KEEPIDLE, 2), (socket.TCP_KEEPINTVL, 1), (socket.TCP_KEEPCNT, 3))


class RedisError(Exception):
    """Redis is unreachable, answered an error, or broke the protocol."""


class RedisReplyError(RedisError):
    """Redis answered an error (``-ERR ...``): the connection itself is fine."""


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
            raise RedisReplyError(reply.message)
        return reply

    async def call(self, *command: bytes | str | int) -> Reply:
        """Send one command and read its reply."""
        await self.send(command)
        return await self.reply()

    async def aclose(self) -> None:
        """Close the connection."""
        await self._stream.aclose()


class RedisPool:
    """Up to ``size`` connections, each used by one task at a time, for request-path
    calls that must not wait on an absent Redis: a call answers within ``timeout``
    seconds, and after a failure every call fails at once for ``cooldown`` seconds."""

    def __init__(
        self,
        address: RedisAddress,
        *,
        size: int = 4,
        timeout: float = 0.25,
        cooldown: float = 1.0,
    ) -> None:
        self.address = address
        self._slots = trio.CapacityLimiter(size)
        self._idle: list[RedisConnection] = []
        self._timeout = timeout
        self._cooldown = cooldown
        self._down_until = 0.0

    async def call(self, *command: bytes | str | int) -> Reply:
        """One command's reply (:class:`RedisError` if Redis cannot give it now)."""
        if trio.current_time() < self._down_until:
            raise RedisError(f"{self.address} failed less than {self._cooldown} s ago")
        async with self._slots:
            connection = self._idle.pop() if self._idle else None
            try:
                with trio.fail_after(self._timeout):
                    if connection is None:
                        connection = await RedisConnection.open(self.address, within=self._timeout)
                    reply = await connection.call(*command)
            except RedisReplyError:
                assert connection is not None
                self._idle.append(connection)
                raise
            except (RedisError, trio.TooSlowError) as error:
                self._down_until = trio.current_time() + self._cooldown
                await _discard(connection)
                raise RedisError(f"{self.address}: {error or 'timed out'}") from None
            except BaseException:
                await _discard(connection)  # cancelled mid-call: its state is unknown
                raise
            self._idle.append(connection)
            return reply

    async def aclose(self) -> None:
        """Close the idle connections (those in use close when their call ends)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            await _discard(connection)


async def _discard(connection: RedisConnection | None) -> None:
    if connection is not None:
        with trio.CancelScope(shield=True):
            await connection.aclose()
