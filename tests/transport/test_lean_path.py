"""The lean HTTP/1.1 path answers exactly as the h11 path does, hands connections over to
it, and keeps connections alive and closes them the same way.

Every exchange is sent byte for byte to two servers of one app, one with the lean routes
and one with the h11 path alone, and the two byte streams must be the same (``date``
lines aside).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import trio
from hypercorn.config import Config

from relay.api.asgi import respond
from relay.transport.lean import MAX_BODY_BYTES
from relay.transport.listener import OpenConnections, serve_http
from relay.transport.types import DISCARD_LIMIT_BYTES

LEAN = frozenset({("POST", "/echo"), ("POST", "/early"), ("POST", "/fail"), ("POST", "/nothing")})


async def _app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    if path == "/echo":
        body = b""
        while (message := await receive())["type"] == "http.request":
            body += message["body"]
            if not message.get("more_body"):
                break
        seen = f"{scope['method']} {scope['query_string']!r} {scope['headers']!r}".encode()
        await respond(send, 200, seen + b"|" + body, [(b"content-type", b"text/plain")])
    elif path == "/early":
        await respond(send, 401, b"no")
    elif path == "/fail":
        raise RuntimeError("the application broke")
    elif path == "/nothing":
        return
    else:
        await respond(send, 200, b"h11's " + path.encode())


Server = tuple[str, int]


@asynccontextmanager
async def _servers(**options: Any) -> AsyncIterator[tuple[Server, Server, trio.Event]]:
    """The app served with the lean routes and without them; set the event to stop."""
    stop = trio.Event()

    def config() -> Config:
        conf = Config()
        conf.bind = ["127.0.0.1:0"]
        for name, value in options.items():
            setattr(conf, name, value)
        return conf

    async with trio.open_nursery() as nursery:
        addresses = []
        for routes in (LEAN, frozenset()):
            binds = await nursery.start(
                partial(
                    serve_http,
                    _app,
                    config(),
                    OpenConnections(),
                    shutdown_trigger=stop.wait,
                    lean_routes=routes,
                )
            )
            host, port = binds[0].removeprefix("http://").split(":")
            addresses.append((host, int(port)))
        yield addresses[0], addresses[1], stop
        stop.set()


_DATE = re.compile(rb"\r\ndate: [^\r]*")


async def _talk(server: Server, *parts: bytes) -> bytes:
    """Send ``parts`` (pausing between them) and read until the server closes."""
    stream = await trio.open_tcp_stream(*server)
    async with stream:
        for part in parts:
            await stream.send_all(part)
            await trio.sleep(0.05)
        received = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some():
                received += chunk
    return _DATE.sub(b"\r\ndate: -", received)


async def _alike(*parts: bytes, **options: Any) -> bytes:
    async with _servers(**options) as (lean, plain, _):
        ours = await _talk(lean, *parts)
        theirs = await _talk(plain, *parts)
    assert ours == theirs
    return ours


def _post(path: bytes, body: bytes = b"", extra: bytes = b"") -> bytes:
    head = b"POST " + path + b" HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n" % len(body)
    return head + extra + b"\r\n" + body


_CLOSE = b"Connection: close\r\n"


async def test_pipelined_requests_are_answered_in_order() -> None:
    answer = await _alike(
        _post(b"/echo?q=1", b"first", b"X-Test: a\r\n") + _post(b"/echo", b"second", _CLOSE)
    )
    assert answer.count(b"HTTP/1.1 200 ") == 2
    assert answer.index(b"|first") < answer.index(b"|second")
    assert answer.endswith(b"Connection: close\r\n\r\n" + answer.rsplit(b"\r\n\r\n", 1)[1])


async def test_a_body_arriving_later_is_waited_for() -> None:
    request = _post(b"/echo", b"later", _CLOSE)
    answer = await _alike(request[:-3], request[-3:])
    assert answer.endswith(b"|later")


async def test_a_request_for_another_route_goes_to_the_h11_path_with_the_rest() -> None:
    answer = await _alike(
        _post(b"/echo", b"lean")
        + b"GET /other HTTP/1.1\r\nHost: t\r\n\r\n"
        + _post(b"/echo", b"after", _CLOSE)
    )
    assert b"h11's /other" in answer
    assert answer.endswith(b"|after")


async def test_a_request_that_is_not_plain_goes_to_the_h11_path() -> None:
    chunked = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n" + _CLOSE
    answer = await _alike(_post(b"/echo", b"a"), chunked + b"\r\n2\r\nbc\r\n0\r\n\r\n")
    assert answer.endswith(b"|bc")


@pytest.mark.parametrize("path", [b"/fail", b"/nothing"])
async def test_a_failed_application_gets_an_empty_500_and_a_close(path: bytes) -> None:
    answer = await _alike(_post(path, b"x"))
    assert answer.startswith(b"HTTP/1.1 500 \r\ncontent-length: 0\r\nconnection: close\r\n")
    assert answer.endswith(b"\r\n\r\n")


async def test_a_body_answered_early_is_dropped_and_the_next_request_served() -> None:
    # An expired token's 401 comes before the body; the client then sends the body and
    # its next request on the same keep-alive connection.
    request = _post(b"/early", b"hello")
    answer = await _alike(request[:-5], request[-5:], _post(b"/echo", b"next", _CLOSE))
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert answer.endswith(b"|next")
    assert b"hello" not in answer


async def test_a_body_answered_early_over_the_discard_limit_closes_the_connection() -> None:
    head = b"POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
    answer = await _alike(head % (DISCARD_LIMIT_BYTES + 1), b"x" * 1000)
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert answer.endswith(b"\r\n\r\nno")


async def test_a_chunked_body_answered_early_closes_the_connection() -> None:
    head = b"POST /early HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = await _alike(head, b"5\r\nhello\r\n", _post(b"/echo", b"next"))
    assert answer.count(b"HTTP/1.1 ") == 1
    assert answer.endswith(b"\r\n\r\nno")


async def test_an_answer_after_the_whole_body_keeps_the_connection() -> None:
    answer = await _alike(_post(b"/early", b"hello") + _post(b"/echo", b"kept", _CLOSE))
    assert answer.endswith(b"|kept")


async def test_the_request_limit_per_connection_is_the_same() -> None:
    answer = await _alike(
        b"".join(_post(b"/echo", b"%d" % n) for n in range(3)), keep_alive_max_requests=2
    )
    assert answer.count(b"HTTP/1.1 200 ") == 2
    last = answer.rsplit(b"HTTP/1.1 200 ", 1)[1]
    assert last.endswith(b"\r\nconnection: close\r\n\r\n" + last.rsplit(b"\r\n\r\n", 1)[1])


async def _idle_connection(server: Server) -> trio.SocketStream:
    stream = await trio.open_tcp_stream(*server)
    await stream.send_all(_post(b"/echo", b"x"))
    received = b""
    while not received.endswith(b"|x"):
        received += await stream.receive_some()
    return stream


async def _closed(stream: trio.SocketStream, within: float) -> None:
    with trio.fail_after(within):
        assert await stream.receive_some() == b""


async def test_an_idle_connection_closes_after_the_keep_alive_timeout() -> None:
    async with _servers(keep_alive_timeout=0.2) as (lean, _, _):
        stream = await _idle_connection(lean)
        async with stream:
            await _closed(stream, within=5)


async def test_shutdown_closes_idle_connections_at_once() -> None:
    # Neither the keep-alive timeout nor the grace period would end the connection.
    started = trio.current_time()
    async with _servers(keep_alive_timeout=60, graceful_timeout=60) as (lean, _, stop):
        stream = await _idle_connection(lean)
        async with stream:
            stop.set()
            await _closed(stream, within=5)
    assert trio.current_time() - started < 30


async def test_a_body_over_the_lean_limit_goes_to_the_h11_path() -> None:
    head = b"POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
    answer = await _alike(head % (MAX_BODY_BYTES + 1))
    assert answer.startswith(b"HTTP/1.1 401 ")
