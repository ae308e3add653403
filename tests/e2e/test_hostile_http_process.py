"""Malformed framing, early refusals and abrupt disconnects at every way a request is
served, against the real ``relay serve``: the process never exits, every connection is
answered or closed, and the server's descriptors come back.

The serving paths: Quart (``/v1/devices``), a raw ASGI route (``/v1/attachments``), the
lean path (``/v1/messages``) and the gateway's WebSocket upgrade (``/v1/gateway``).
"""

from __future__ import annotations

import re
import socket
import struct
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trio

from tests.e2e.process import Serving, relay_process

# (method, path) of each serving path, with the headers that route it there.
PATHS = {
    "quart": (b"GET", b"/v1/devices", b""),
    "asgi": (b"POST", b"/v1/attachments", b""),
    "lean": (b"POST", b"/v1/messages", b""),
    "gateway": (b"GET", b"/v1/gateway", b"Upgrade: websocket\r\nConnection: Upgrade\r\n"),
}
NEXT = (
    b"POST /v1/users HTTP/1.1\r\nHost: x\r\n"
    b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
)
# Every case must be answered or closed within this; the idle keep-alive timeout (5 s)
# and the lingering close (2 s) fit in it, a wedged connection does not.
SETTLE_SECS = 9.0


def _head(path: str, extra: bytes) -> bytes:
    method, target, routing = PATHS[path]
    return method + b" " + target + b" HTTP/1.1\r\nHost: x\r\n" + routing + extra + b"\r\n"


MALFORMED = {
    "bad chunk": (b"Transfer-Encoding: chunked\r\n", b"zz\r\n"),
    "content-length and chunked": (
        b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
        b"0\r\n\r\n" + NEXT,
    ),
    "two content-lengths": (b"Content-Length: 1\r\nContent-Length: 2\r\n", b"ab"),
    "bad content-length": (b"Content-Length: abc\r\n", b""),
    "header without a colon": (b"Not a header\r\n", b""),
    "bad header name": (b"Bad Name: x\r\n", b""),
    "huge head": (b"X-Fill: " + b"a" * 20_000 + b"\r\n", b""),
}


_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


@dataclass
class Outcome:
    received: bytes
    closed: bool

    @property
    def statuses(self) -> list[int]:
        return [int(status) for status in _STATUS.findall(self.received)]


async def _exchange(address: tuple[str, int], *parts: bytes, pause: float = 0.1) -> Outcome:
    """Send ``parts`` with pauses, read until the server closes or the time is up."""
    stream = await trio.open_tcp_stream(*address)
    received = b""
    closed = False
    async with stream, trio.open_nursery() as nursery:

        async def write() -> None:
            for part in parts:
                try:
                    await stream.send_all(part)
                except trio.BrokenResourceError:
                    return
                await trio.sleep(pause)

        nursery.start_soon(write)
        with trio.move_on_after(SETTLE_SECS):
            try:
                while chunk := await stream.receive_some():
                    received += chunk
            except trio.BrokenResourceError:
                pass
            closed = True
        nursery.cancel_scope.cancel()
    return Outcome(received, closed)


async def _reset_after(address: tuple[str, int], data: bytes) -> None:
    """Send ``data`` and drop the connection with a reset."""
    sock = trio.socket.socket()
    await sock.connect(address)
    await sock.send(data)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _descriptors(server: Serving) -> int:
    return len(list(Path(f"/proc/{server.process.pid}/fd").iterdir()))


def _address(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Serving]:
    with relay_process(tmp_path, database_url) as running:
        yield running


async def _still_serving(server: Serving) -> None:
    assert server.process.poll() is None, server.startup_log
    async with httpx.AsyncClient(base_url=server.api) as http:
        assert (await http.get("/v1/devices")).status_code == 401
    async with httpx.AsyncClient(base_url=server.management) as ops:
        assert (await ops.get("/livez")).status_code == 200


async def test_malformed_framing_gets_a_4xx_and_a_close_on_every_path(server: Serving) -> None:
    address = _address(server.api)
    outcomes: dict[tuple[str, str], Outcome] = {}

    async def case(path: str, name: str) -> None:
        headers, body = MALFORMED[name]
        outcomes[path, name] = await _exchange(address, _head(path, headers) + body)

    async with trio.open_nursery() as nursery:
        for _round in range(3):  # the crash took a few such requests
            for path in PATHS:
                for name in MALFORMED:
                    nursery.start_soon(case, path, name)
    for (path, name), outcome in outcomes.items():
        assert outcome.closed, (path, name, outcome)
        assert len(outcome.statuses) == 1, (path, name, outcome)
        assert 400 <= outcome.statuses[0] < 500, (path, name, outcome)
    await _still_serving(server)


@pytest.mark.parametrize("path", ["quart", "asgi", "lean"])
async def test_a_body_refused_early_is_dropped_and_the_next_request_answered(
    server: Serving, path: str
) -> None:
    address = _address(server.api)
    head = _head(path, b"Content-Type: application/json\r\nContent-Length: 7\r\n")
    outcome = await _exchange(address, head, b'{"x":1}', NEXT)
    assert len(outcome.statuses) == 2, outcome
    assert outcome.statuses[0] == 401
    assert outcome.statuses[1] in (400, 422)


async def test_a_gateway_upgrade_refused_early_is_answered_then_closed(server: Serving) -> None:
    outcome = await _exchange(_address(server.api), _head("gateway", b""), NEXT)
    assert outcome.statuses[0] == 400, outcome
    assert outcome.closed


@pytest.mark.parametrize(
    "head",
    [
        b"GET /v1/devices HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /v1/devices HTTP/1.0\r\n\r\n",
        b"GET /openapi/zulip.yaml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        b"POST /v1/messages HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
    ],
)
async def test_a_connection_asked_to_close_is_closed_after_the_response(
    server: Serving, head: bytes
) -> None:
    with trio.fail_after(2):
        outcome = await _exchange(_address(server.api), head)
    assert outcome.closed
    assert len(outcome.statuses) == 1


async def test_abrupt_disconnects_leave_the_server_serving_and_descriptors_released(
    server: Serving,
) -> None:
    address = _address(server.api)
    await _still_serving(server)
    before = _descriptors(server)
    partial_body = b"Content-Length: 100\r\n"
    async with trio.open_nursery() as nursery:
        for _round in range(20):
            for path in PATHS:
                nursery.start_soon(_reset_after, address, _head(path, b"")[:20])
                nursery.start_soon(_reset_after, address, _head(path, partial_body) + b"abc")
                nursery.start_soon(_reset_after, address, _head(path, b""))
                # Idle keep-alive connections must be closed by the server too.
                nursery.start_soon(_exchange, address, _head(path, b"Content-Length: 0\r\n"))
    with trio.fail_after(SETTLE_SECS):
        while _descriptors(server) > before:  # noqa: ASYNC110 (another process's state)
            await trio.sleep(0.1)
    await _still_serving(server)
