"""CORS in a real browser: headless Chromium (Debian's ``chromium``, driven by
playwright-core from npm, both installed by ``.ci/run``) opens a page served from
another origin than the API. From an origin in ``RELAY_CORS_ORIGINS`` the page
registers, provisions a device, sends itself a message with ``fetch()`` (the lean send
path), reads the exposed ``x-request-id`` and receives the message over the gateway
WebSocket; from any other origin the browser refuses the first call (its preflight gets
no grant) and nothing is created. A gateway upgrade from an origin not allowed is
refused (browsers do not apply CORS to WebSockets, the server checks)."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trio

from relay.client import DeviceKeys, ObscuraClient
from tests.e2e.process import relay_process
from tests.factories import PASSWORD, unique_username

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        del format, args


@contextmanager
def page_server() -> Iterator[str]:
    """This directory over HTTP on a loopback port of its own (an origin of its own)."""
    handler = partial(_QuietHandler, directory=str(HERE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def drive(page_url: str, config: dict[str, Any]) -> dict[str, Any]:
    """Run the page's scenario in headless Chromium; what it returned."""
    chromium = shutil.which("chromium")
    if chromium is None or not (NODE_MODULES / "playwright-core").is_dir():
        pytest.fail(
            "the browser test needs Debian's chromium and playwright-core in "
            f"{NODE_MODULES} (.ci/run installs both)"
        )
    done = subprocess.run(
        ["node", str(HERE / "drive.js"), page_url, chromium],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "NODE_PATH": str(NODE_MODULES), "HOME": str(HERE)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _scenario(api: str) -> dict[str, Any]:
    return {
        "api": api,
        "username": unique_username("browser"),
        "password": PASSWORD,
        "device": DeviceKeys.generate().create_device_json("browser"),
        "message": "hello from another origin",
    }


async def test_a_page_of_an_allowed_origin_works_and_another_is_refused(
    tmp_path: Path, database_url: str
) -> None:
    with (
        page_server() as allowed,
        page_server() as elsewhere,
        relay_process(tmp_path, database_url, cors_origins=allowed) as server,
    ):
        config = _scenario(server.api)
        result = drive(f"{allowed}/page.html", config)
        assert result.get("error") is None, result
        assert result["received"] is True
        assert result["requestId"]  # exposed to the page's script

        refused_config = _scenario(server.api)
        refused = drive(f"{elsewhere}/page.html", refused_config)
        assert "Failed to fetch" in refused["error"]
        async with httpx.AsyncClient(base_url=server.api) as http:
            # The refused page's account was never created.
            response = await http.post(
                "/v1/sessions",
                json={"username": refused_config["username"], "password": PASSWORD},
            )
            assert response.status_code == 401
            # A preflight from an origin not allowed gets no grant.
            preflight = await http.options(
                "/v1/messages",
                headers={"Origin": elsewhere, "Access-Control-Request-Method": "POST"},
            )
            assert preflight.status_code == 403
            assert "access-control-allow-origin" not in preflight.headers
            # The gateway refuses an upgrade from that origin.
            client = ObscuraClient(http)
            await client.login(config["username"], PASSWORD, uuid.UUID(result["deviceId"]))
            ticket = await client.gateway_ticket()
            # The raw ASGI routes (attachments, backups) grant the allowed origin too.
            for path in ("/v1/attachments", "/v1/backup"):
                preflight = await http.options(
                    path, headers={"Origin": allowed, "Access-Control-Request-Method": "PUT"}
                )
                assert preflight.status_code == 204
                assert preflight.headers["access-control-allow-origin"] == allowed
                assert "If-Match" in preflight.headers["access-control-allow-headers"]
            backup = await http.get(
                "/v1/backup", headers={**client.auth_headers, "Origin": allowed}
            )
            assert backup.headers["access-control-allow-origin"] == allowed
            assert backup.headers["access-control-expose-headers"] == "ETag, x-request-id"
        answer = await _upgrade(server.api, f"/v1/gateway?ticket={ticket}", elsewhere)
        assert answer.startswith(b"HTTP/1.1 403 "), answer


async def _upgrade(api: str, target: str, origin: str) -> bytes:
    """A browser's WebSocket upgrade request, in bytes; the head of the answer."""
    url = urlsplit(api)
    assert url.hostname is not None
    assert url.port is not None
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
    ).encode()
    stream = await trio.open_tcp_stream(url.hostname, url.port)
    async with stream:
        await stream.send_all(request)
        answer = b""
        with trio.fail_after(10):
            while b"\r\n\r\n" not in answer:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    break
                answer += chunk
    return answer
