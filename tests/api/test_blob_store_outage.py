"""An S3 outage: the attachment and backup routes answer 503 with ``Retry-After``, the
rest keeps serving, ``/readyz`` reports storage ``error``."""

from __future__ import annotations

import httpx
import pytest

from relay.process.server import Listening
from tests.factories import new_device
from tests.messaging import send_numbered

UNREACHABLE_S3 = pytest.mark.settings(
    blob_store="s3",
    storage_bucket="relay",
    storage_access_key="key",
    storage_secret_key="secret",
    storage_endpoint="http://127.0.0.1:9",
    storage_force_path_style=True,
)


@UNREACHABLE_S3
async def test_an_s3_outage_is_a_503_on_blob_routes_only(
    http: httpx.AsyncClient, relay: Listening, caplog: pytest.LogCaptureFixture
) -> None:
    alice = await new_device(http)
    bob = await new_device(http)
    auth = alice.client.auth_headers
    upload = await http.post("/v1/attachments", content=b"x" * 100, headers=auth)
    assert upload.status_code == 503
    assert upload.headers["retry-after"] == "1"
    assert upload.json() == {"error": "Service unavailable"}
    backup = await http.post(
        "/v1/backup", content=b"b" * 64, headers={**auth, "If-None-Match": "*"}
    )
    assert backup.status_code == 503
    await send_numbered(bob, alice, 2)  # messaging needs no blob store
    reports = [r for r in caplog.records if "blob store unavailable" in r.getMessage()]
    assert len(reports) == 1  # one line for the outage, not one per request
    assert relay.management_url is not None
    async with httpx.AsyncClient(base_url=relay.management_url) as management:
        ready = await management.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["storage"] == "error"
    assert ready.json()["database"] == "ok"
