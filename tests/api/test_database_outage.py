"""While the database is unreachable, every face answers 503 with ``Retry-After`` in its
own error convention, and the outage is logged once, not once per request."""

from __future__ import annotations

import logging
import time
import uuid

import httpx
import pytest

from relay.crypto.jwt import JwtCodec
from relay.process.server import Listening
from relay.registry import Services
from storage.db import Database, PoolOptions, create_engine
from tests.conftest import TEST_JWT_SECRET
from tests.rawws import RawWebSocket

# Nothing listens on port 1: every connection attempt is refused at once.
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/relay"


@pytest.fixture
def db() -> Database:
    """A database that cannot be reached (the suite's own is left alone)."""
    pool = PoolOptions(max_connections=4, acquire_timeout_secs=1)
    return Database(create_engine(UNREACHABLE, pool), max_concurrency=4)


def _device_token() -> str:
    codec = JwtCodec(TEST_JWT_SECRET.encode())
    return codec.encode(uuid.uuid4(), uuid.uuid4(), int(time.time()) + 600)


async def test_every_face_answers_503_and_the_outage_is_logged_once(
    relay: Listening,
    http: httpx.AsyncClient,
    services: Services,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "relay.api")
    bearer = {"Authorization": f"Bearer {_device_token()}"}
    answers = [
        # Obscura, Quart and raw ASGI (the lean path serves the send).
        await http.post("/v1/users", json={"username": "someone", "password": "x" * 12}),
        await http.get("/v1/devices", headers=bearer),
        await http.post(
            "/v1/messages", content=b"", headers={**bearer, "Idempotency-Key": str(uuid.uuid4())}
        ),
        await http.get(f"/v1/attachments/{uuid.uuid4()}", headers=bearer),
        # PowerAuth, Zulip, Rocket.Chat.
        await http.get("/admin/app/list", headers={"Authorization": "Bearer some-key"}),
        await http.post("/api/v1/fetch_api_key", data={"username": "someone", "password": "b"}),
        await http.post("/api/v1/login", json={"username": "someone", "password": "b"}),
    ]
    for response in answers:
        assert response.status_code == 503, (response.request.url, response.text)
        assert response.headers["retry-after"] == "1"
    assert answers[0].json() == {"error": "Service unavailable"}
    assert answers[2].json() == {"error": "Service unavailable"}
    assert answers[4].json()["responseObject"]["code"] == "ERROR_DATABASE"
    assert answers[5].json()["result"] == "error"
    assert answers[6].json() == {"success": False, "error": "Service unavailable"}
    status, headers, _ = await RawWebSocket.refusal(relay.api_url, "/v1/gateway?ticket=t")
    assert (status, headers[b"retry-after"]) == (503, b"1")
    reports = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert len(reports) == 1
