"""Graceful shutdown: in-flight requests finish, then the server stops."""

from __future__ import annotations

import urllib.parse
from functools import partial

import pytest
import trio

from relay.config import Settings
from relay.process.server import run_server
from relay.registry import Services


@pytest.mark.settings(server_shutdown_timeout_secs=5)
async def test_in_flight_request_completes_during_shutdown(
    settings: Settings, services: Services
) -> None:
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        listening = await nursery.start(partial(run_server, settings, services, shutdown=shutdown))
        url = urllib.parse.urlsplit(listening.api_url)
        assert url.hostname is not None
        assert url.port is not None
        stream = await trio.open_tcp_stream(url.hostname, url.port)
        body = b'{"username": "ab", "password": "x"}'
        head = (
            b"POST /v1/users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        await stream.send_all(head + body[:10])
        await trio.sleep(0.2)
        shutdown.set()
        await trio.sleep(0.2)
        await stream.send_all(body[10:])
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = await stream.receive_some()
            assert chunk, "connection closed before the in-flight request was answered"
            response += chunk
        assert response.startswith(b"HTTP/1.1 400")
        await stream.aclose()
    # run_server returned: the nursery exited on its own.
    with pytest.raises(OSError):  # noqa: PT011 (connection refused, errno varies)
        await trio.open_tcp_stream(url.hostname, url.port)
