"""The accept loop under hypercorn: request-head sniffing, replay, aborting connections."""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx
import pytest
import trio
from hypercorn.config import Config

from relay.api.asgi import respond
from relay.transport.http1 import NotPlain, RequestHead, parse_request, sniff
from relay.transport.listener import (
    OpenConnections,
    PeekedStream,
    serve_http,
)
from relay.transport.types import Address


def test_a_complete_head_is_parsed() -> None:
    head = sniff(
        b"GET /v1/gateway?ticket=abc HTTP/1.1\r\nHost: x\r\nUpgrade:  WebSocket \r\n\r\nrest"
    )
    assert head is not None
    assert (head.method, head.path) == ("GET", "/v1/gateway")
    assert head.header(b"upgrade") == b"WebSocket"
    assert head.header(b"host") == b"x"
    assert head.header(b"missing") is None


@pytest.mark.parametrize(
    "data",
    [
        b"GET /v1/gateway HTTP/1.1\r\nHost: x\r\n",  # incomplete
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # HTTP/2 prior knowledge
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS
        b"",
        # What h11 refuses is left to the h11 path, which answers 400.
        b"GET /v1/gateway HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n",
        b"GET /v1/gateway HTTP/1.1\r\nHost: x\nUpgrade: websocket\r\n\r\n",
        b"GET http://x/v1/gateway HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
)
def test_anything_else_is_not_a_head(data: bytes) -> None:
    assert sniff(data) is None


def test_an_http_1_0_head_is_sniffed_but_not_framed_by_the_lean_path() -> None:
    data = b"POST /v1/messages HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    head = sniff(data)
    assert head is not None
    assert (head.method, head.path) == ("POST", "/v1/messages")
    with pytest.raises(NotPlain, match=r"HTTP/1\.0"):
        parse_request(data)


async def _connected_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listener.accept()
    await listener.aclose()
    return client, server


async def test_peeked_bytes_are_replayed_first() -> None:
    client, server = await _connected_pair()
    async with client, server:
        await client.send_all(b"world")
        stream = PeekedStream(server, b"hello ")
        assert await stream.receive_some(3) == b"hel"
        assert await stream.receive_some() == b"lo "
        assert await stream.receive_some() == b"world"
        await stream.send_all(b"back")
        assert await client.receive_some() == b"back"


async def test_abort_wakes_a_send_blocked_behind_a_reader_that_stopped() -> None:
    client, server = await _connected_pair()
    connections = OpenConnections()
    peer = ("127.0.0.1", client.socket.getsockname()[1])
    blocked = trio.Event()
    async with client:
        with connections.track(server, peer):
            assert len(connections) == 1

            async def send_until_blocked() -> None:
                # Shielded, as hypercorn's writer is: only closing the socket helps.
                with trio.CancelScope(shield=True):
                    while True:
                        blocked.set()
                        await server.send_all(b"x" * 65536)

            async def flood() -> None:
                with pytest.raises(trio.ClosedResourceError):
                    await send_until_blocked()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(flood)
                await blocked.wait()
                await trio.sleep(0.2)  # the socket buffers are full by now
                assert not connections.abort(("127.0.0.1", 1))
                assert connections.abort(peer)
        assert len(connections) == 0
        assert connections.abort_all() == 0


class _Failing:
    """An interceptor that breaks on every connection it takes."""

    def wants(self, head: RequestHead) -> bool:
        return head.path == "/boom"

    async def serve(self, stream: PeekedStream, peer: Address | None) -> None:
        raise RuntimeError("bug in a connection handler")


async def _plain_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "http":
        await respond(send, 200, b"still here")


async def test_a_failing_interceptor_does_not_stop_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = Config()
    config.bind = ["127.0.0.1:0"]
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            partial(
                serve_http,
                _plain_app,
                config,
                OpenConnections(),
                shutdown_trigger=stop.wait,
                interceptor=_Failing(),
            )
        )
        async with httpx.AsyncClient(base_url=binds[0]) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get("/boom")
            assert (await client.get("/fine")).text == "still here"
        stop.set()
    assert "bug in a connection handler" in caplog.text
