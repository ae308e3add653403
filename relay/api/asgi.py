"""Minimal ASGI helpers for the parts of the server that run below Quart.

Quart reads a request body eagerly into memory, with no back-pressure, so the routes that
stream large bodies in or out (attachments, backups) are plain ASGI handlers built on
:class:`StreamingRequest` and :func:`run_endpoint`: they read the body one ASGI message at
a time (the socket is read only when the handler asks for more) and send responses
in chunks. ``POST /v1/messages`` is one too, for speed: Quart's per-request machinery
costs more than the send itself. Errors follow the Obscura conventions of
:mod:`relay.api.http`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from contextlib import aclosing
from typing import Any

import msgspec
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope

from relay.api.http import BODY_INCOMPLETE, BODY_TOO_LARGE, Rejection
from relay.api.outages import unavailable_raw
from relay.errors import RelayError, ServiceUnavailable
from relay.transport.types import Headers
from storage.errors import StorageError, StorageUnavailable

log = logging.getLogger("relay.api")

OCTET_STREAM = (b"content-type", b"application/octet-stream")
JSON = (b"content-type", b"application/json")


async def respond(
    send: ASGISendCallable,
    status: int,
    body: bytes = b"",
    headers: Headers | None = None,
) -> None:
    """Send a complete response with a ``content-length``."""
    all_headers = [*(headers or []), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": all_headers, "trailers": False}
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def respond_json(send: ASGISendCallable, status: int, payload: Any) -> None:
    """Send a JSON response."""
    await respond(send, status, msgspec.json.encode(payload), [JSON])


def is_websocket_upgrade(method: str, headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """A WebSocket handshake: a GET asking to upgrade to ``websocket``."""
    upgrade = next((value for name, value in headers if name == b"upgrade"), b"")
    return method == "GET" and b"websocket" in upgrade.lower()


class StreamingRequest:
    """An HTTP request whose body is read as it arrives, and its response state."""

    def __init__(self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable):
        self.method = scope["method"]
        self.path = scope["path"]
        self._headers = scope["headers"]
        self._receive = receive
        self._send = send
        self.response_started = False
        self.body_complete = False  # the body's last part arrived (not a disconnect)

    def header(self, name: bytes) -> str | None:
        """The first value of header ``name`` (lower case), if present."""
        for key, value in self._headers:
            if key == name:
                return value.decode("latin-1")
        return None

    def content_length(self) -> int | None:
        """The declared body length; None without one (a chunked upload)."""
        value = self.header(b"content-length")
        if value is None or not value.isdigit():
            return None
        return int(value)

    async def body(self) -> AsyncGenerator[bytes, None]:
        """The body, one received chunk at a time, until its end or a disconnect
        (:attr:`body_complete` tells which)."""
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                return
            if message["type"] == "http.request":
                if message["body"]:
                    yield bytes(message["body"])
                if not message.get("more_body", False):
                    self.body_complete = True
                    return

    async def whole_body(self, limit: int) -> bytes:
        """The body in memory; a plain-text 413 (as Quart answers) beyond ``limit``, a 400
        when the client disconnected before its end."""
        declared = self.content_length()
        if declared is not None and declared > limit:
            raise Rejection(413, BODY_TOO_LARGE)
        parts = []
        size = 0
        async with aclosing(self.body()) as chunks:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise Rejection(413, BODY_TOO_LARGE)
                parts.append(chunk)
        if not self.body_complete:
            # The client went away mid-body: what arrived is not the request it meant.
            raise Rejection(400, BODY_INCOMPLETE)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def start(self, status: int, headers: Headers) -> None:
        """Begin the response."""
        self.response_started = True
        await self._send(
            {"type": "http.response.start", "status": status, "headers": headers, "trailers": False}
        )

    async def send_body(self, data: bytes, *, more: bool) -> None:
        """Send part of the response body."""
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def stream(self, status: int, headers: Headers, chunks: AsyncIterator[bytes]) -> None:
        """Send a response whose body is ``chunks`` (HEAD requests send only the headers)."""
        await self.start(status, headers)
        if self.method != "HEAD":
            async for chunk in chunks:
                await self.send_body(chunk, more=True)
        await self.send_body(b"", more=False)

    async def complete(
        self, status: int, body: bytes = b"", headers: Headers | None = None
    ) -> None:
        """Send a whole response."""
        self.response_started = True
        await respond(self._send, status, body, headers)

    async def complete_json(self, status: int, payload: Any) -> None:
        """Send a whole JSON response."""
        self.response_started = True
        await respond_json(self._send, status, payload)


Handler = Callable[[StreamingRequest], Awaitable[None]]


async def run_endpoint(
    handler: Handler, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
) -> None:
    """Run ``handler``, answering errors as the Obscura API does.

    Service errors get ``{"error": ...}`` JSON with their status, rejections plain text,
    anything else a 500 that reveals nothing. An error after the response has started can
    only end it early.
    """
    request = StreamingRequest(scope, receive, send)
    try:
        await handler(request)
    except (RelayError, Rejection, StorageError) as error:
        if request.response_started:
            log.warning("%s %s failed mid-response: %s", request.method, request.path, error)
            return
        if isinstance(error, Rejection):
            await request.complete(
                error.status, error.text.encode(), [(b"content-type", b"text/plain; charset=utf-8")]
            )
            return
        headers: Headers = []
        if isinstance(error, StorageUnavailable):
            headers = unavailable_raw(error)
            error = ServiceUnavailable()
        elif isinstance(error, StorageError):
            log.error("%s %s: storage failed: %s", request.method, request.path, error)
            error = RelayError()
        body = msgspec.json.encode({"error": error.message})
        await respond(send, error.status, body, [JSON, *headers])
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        if not request.response_started:
            await respond_json(send, 500, {"error": RelayError.default_message})


async def method_not_allowed(request: StreamingRequest, allowed: bytes) -> None:
    """An empty 405 naming the allowed methods."""
    await request.complete(405, headers=[(b"allow", allowed)])
