"""The push feedback webhook against real processes: the FCM emulator says a device's
token is unregistered; ``relay serve`` removes the token, fails the wake-up job and POSTs
one signed event for each to a test HTTP server — which refuses the first delivery, so
the event comes again from the durable queue."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from relay.client import Outgoing
from storage.db import Database
from tests.e2e.process import Emulator, emulator_process, relay_process
from tests.e2e.pushing import configure_wakeup_app, push_settings
from tests.factories import new_device
from tests.waiting import until_true

SECRET = "feedback-secret-0123456789"


@contextmanager
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes, int]]]]:
    """An HTTP server recording every POST (headers, body, status answered); it answers
    the first one 500 and the others 204."""
    received: list[tuple[dict[str, str], bytes, int]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            status = 500 if not received else 204
            received.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/relay-feedback", received
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


async def _fault(emulator: Emulator, token: str) -> None:
    context = ssl.create_default_context(cafile=str(emulator.state / "emulator-cert.pem"))
    async with httpx.AsyncClient(http2=True, verify=context) as client:
        plan = {"per_token": {token: {"kind": "unregistered"}}}
        response = await client.post(f"{emulator.url}/_emulator/faults", json=plan)
        assert response.status_code == 200


async def test_removed_tokens_and_failed_jobs_reach_the_webhook_signed(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    with emulator_process("fcm", tmp_path / "fcm") as emulator, receiver() as (url, received):
        configure_wakeup_app(tmp_path, database_url, emulator)
        await _fault(emulator, "dead-token")
        settings = {
            **push_settings(emulator),
            "push_feedback_url": url,
            "push_feedback_secret": SECRET,
            "notifications_invalid_token_cleanup_interval_secs": "1",
        }
        with relay_process(tmp_path, database_url, **settings) as server:
            async with httpx.AsyncClient(base_url=server.api, timeout=30) as http:
                sender, phone = await new_device(http), await new_device(http)
                await phone.client.put_push_token("dead-token")
                assert await sender.client.send_messages([Outgoing(phone.id, b"hi")]) == []

                def both_delivered() -> bool:
                    delivered = {
                        json.loads(body)["event"] for _, body, status in received if status == 204
                    }
                    return delivered == {"push.failed", "token.removed"}

                await until_true(both_delivered, seconds=30)

    events: dict[str, list[dict[str, Any]]] = {}
    for headers, body, _ in received:
        timestamp = headers["x-relay-timestamp"]
        expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        assert headers["x-relay-signature"] == "sha256=" + expected.hexdigest()
        assert headers["content-type"] == "application/json"
        event = json.loads(body)
        events.setdefault(event["id"], []).append(event)
    # The refused first delivery came again, the same event (same id).
    assert received[0][2] == 500
    assert len(events[json.loads(received[0][1])["id"]]) == 2
    kinds = {copies[0]["event"]: copies[0] for copies in events.values()}
    assert set(kinds) == {"push.failed", "token.removed"}
    removed = kinds["token.removed"]
    assert (removed["token"], removed["platform"]) == ("dead-token", "fcm")
    assert "UNREGISTERED" in removed["reason"]
    failed = kinds["push.failed"]
    assert failed["attempts"] == 1
    assert failed["time"].endswith("+00:00")
