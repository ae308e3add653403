"""Attachments (obscura-contract §2.15-2.16, §5.3): streamed uploads, capability downloads."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio
from sqlalchemy.engine import Connection

from relay.client import ApiError
from relay.process.server import Listening
from relay.registry import Services
from storage.db import Database
from storage.ids import MICROS_PER_DAY
from storage.repos import attachments as attachments_repo
from storage.schema import attachments
from tests.factories import new_account, new_device
from tests.rawhttp import HeldRequest, raw_request, upload_head


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def _rows(db: Database) -> int:
    def count(conn: Connection) -> int:
        return len(list(conn.execute(attachments.select())))

    return await db.read(count)


async def test_upload_then_download(http: httpx.AsyncClient, blob_root: Path) -> None:
    device = await new_device(http)
    content = bytes(range(256)) * 1000
    before = int(time.time())
    response = await http.post(
        "/v1/attachments",
        content=content,
        headers={**device.headers, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"id", "expiresAt"}
    assert uuid.UUID(body["id"]).version == 4
    assert before + 30 * 86400 <= body["expiresAt"] <= int(time.time()) + 30 * 86400
    download = await http.get(f"/v1/attachments/{body['id']}", headers=device.headers)
    assert download.status_code == 200
    assert download.content == content
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-length"] == str(len(content))
    assert download.headers["etag"] == f'"{body["id"]}"'
    assert "x-request-id" in download.headers
    # Stored under the configured prefix, nothing left in the upload area.
    stored = _files(blob_root)
    assert [p.relative_to(blob_root).as_posix() for p in stored] == [f"attachments/{body['id']}"]


async def test_anyone_with_the_id_may_download_with_any_token(http: httpx.AsyncClient) -> None:
    uploader = await new_account(http)  # user-scoped token
    attachment = await uploader.upload_attachment(b"shared secret file")
    stranger = await new_device(http)
    assert await stranger.client.download_attachment(attachment.id) == b"shared secret file"


async def test_streamed_upload_and_download(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    chunk = b"0123456789abcdef" * 4096  # 64 KiB

    async def body() -> AsyncIterator[bytes]:
        for _ in range(80):  # 5 MiB
            yield chunk

    attachment = await device.client.upload_attachment(body(), size=80 * len(chunk))
    received = 0
    async with device.client.stream_attachment(attachment.id) as chunks:
        async for part in chunks:
            assert chunk.startswith(part[:16]) or part
            received += len(part)
    assert received == 80 * len(chunk)
    assert await device.client.download_attachment(attachment.id) == chunk * 80


async def test_token_is_checked_before_anything_else(http: httpx.AsyncClient) -> None:
    assert (await http.post("/v1/attachments")).status_code == 401
    assert (await http.get("/v1/attachments/not-a-uuid")).status_code == 401
    forged = {"Authorization": "Bearer nope"}
    assert (await http.post("/v1/attachments", content=b"x", headers=forged)).status_code == 401


async def test_upload_without_length_is_411(http: httpx.AsyncClient) -> None:
    device = await new_device(http)

    async def chunked() -> AsyncIterator[bytes]:
        yield b"no length"

    response = await http.post("/v1/attachments", content=chunked(), headers=device.headers)
    assert response.status_code == 411
    assert response.json() == {"error": "Length required"}


async def test_empty_upload_is_too_small(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    response = await http.post("/v1/attachments", content=b"", headers=device.headers)
    assert response.status_code == 400
    assert response.json() == {"error": "Attachment too small"}


@pytest.mark.settings(attachment_max_size_bytes=1000)
async def test_declared_size_over_the_limit_is_413_before_the_body(
    relay: Listening, http: httpx.AsyncClient, db: Database
) -> None:
    device = await new_device(http)
    head = upload_head(
        "/v1/attachments", {**device.headers, "Content-Length": "1001"}
    )  # and no body is ever sent
    held = await HeldRequest.start(relay.api_url, head)
    try:
        status, body = await held.response()
    finally:
        await held.aclose()
    assert status == 413
    assert body == b'{"error":"Payload too large"}'
    assert await _rows(db) == 0
    ok = await http.post("/v1/attachments", content=b"x" * 1000, headers=device.headers)
    assert ok.status_code == 201


async def test_a_body_cut_short_stores_nothing(
    relay: Listening, http: httpx.AsyncClient, db: Database, blob_root: Path
) -> None:
    device = await new_device(http)
    head = upload_head("/v1/attachments", {**device.headers, "Content-Length": "100000"})
    held = await HeldRequest.start(relay.api_url, head)
    await held.send(b"y" * 50_000)
    await trio.sleep(0.2)
    await held.aclose()
    await trio.sleep(0.3)
    assert await _rows(db) == 0
    assert _files(blob_root) == []


async def test_if_none_match_with_the_id_is_304_without_looking(
    http: httpx.AsyncClient,
) -> None:
    device = await new_device(http)
    unknown = uuid.uuid4()
    for tag in (f'"{unknown}"', str(unknown), f'"{uuid.uuid4()}", "{unknown}"'):
        response = await http.get(
            f"/v1/attachments/{unknown}", headers={**device.headers, "If-None-Match": tag}
        )
        assert response.status_code == 304
        assert response.content == b""
    other = await http.get(
        f"/v1/attachments/{unknown}",
        headers={**device.headers, "If-None-Match": f'"{uuid.uuid4()}"'},
    )
    assert other.status_code == 404


async def test_unknown_and_malformed_ids(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    missing = await http.get(f"/v1/attachments/{uuid.uuid4()}", headers=device.headers)
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not found"}
    malformed = await http.get("/v1/attachments/not-a-uuid", headers=device.headers)
    assert malformed.status_code == 400
    assert malformed.headers["content-type"].startswith("text/plain")
    nested = await http.get(f"/v1/attachments/{uuid.uuid4()}/x", headers=device.headers)
    assert nested.status_code == 404


async def test_expired_and_orphaned_attachments_are_404(
    http: httpx.AsyncClient, db: Database, services: Services
) -> None:
    device = await new_device(http)
    expired = await device.client.upload_attachment(b"old")
    orphan = await device.client.upload_attachment(b"lost")

    def age(conn: Connection) -> None:
        conn.execute(
            attachments.update()
            .where(attachments.c.id == expired.id)
            .values(expires_at=attachments.c.expires_at - 31 * MICROS_PER_DAY)
        )

    await db.write(age)
    await services.blobs.delete(f"attachments/{orphan.id}")
    for attachment_id in (expired.id, orphan.id):
        with pytest.raises(ApiError) as caught:
            await device.client.download_attachment(attachment_id)
        assert caught.value.status == 404


async def test_head_answers_the_headers_only(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    attachment = await device.client.upload_attachment(b"z" * 1234)
    response = await http.head(f"/v1/attachments/{attachment.id}", headers=device.headers)
    assert response.status_code == 200
    assert response.headers["content-length"] == "1234"
    assert response.content == b""


async def test_wrong_methods_are_405(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    listing = await http.get("/v1/attachments", headers=device.headers)
    assert listing.status_code == 405
    assert listing.headers["allow"] == "POST"
    removal = await http.delete(f"/v1/attachments/{uuid.uuid4()}", headers=device.headers)
    assert removal.status_code == 405


@pytest.mark.settings(rate_limit_per_second=1, rate_limit_burst=1)
async def test_attachments_are_not_rate_limited(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    for _ in range(5):
        await account.upload_attachment(b"unlimited")


@pytest.mark.settings(attachment_timeout_secs=1)
async def test_a_slow_upload_gets_408(relay: Listening, http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    head = upload_head("/v1/attachments", {**device.headers, "Content-Length": "10"})
    response = await raw_request(relay.api_url, head, [(0.1, b"ab"), (2.0, b"cdefghij")])
    assert response.startswith(b"HTTP/1.1 408")


@pytest.mark.settings(ttl_days=0)
async def test_expired_attachments_are_deleted_blob_and_row(
    http: httpx.AsyncClient, db: Database, services: Services, blob_root: Path
) -> None:
    device = await new_device(http)
    for _ in range(5):
        await device.client.upload_attachment(b"ephemeral")
    assert len(_files(blob_root)) == 5
    assert await services.attachments.delete_expired(batch_size=2) == 5
    assert await _rows(db) == 0
    assert _files(blob_root) == []


async def test_cleanup_keeps_live_attachments(
    http: httpx.AsyncClient, db: Database, services: Services
) -> None:
    device = await new_device(http)
    live = await device.client.upload_attachment(b"keep me")
    assert await services.attachments.delete_expired(batch_size=10) == 0
    assert await device.client.download_attachment(live.id) == b"keep me"
    record = await db.read(lambda conn: attachments_repo.get_unexpired(conn, live.id, now=0))
    assert record is not None
    assert record.size == 7


@pytest.mark.settings(ttl_days=0, attachment_cleanup_interval_secs=1)
async def test_the_cleanup_worker_runs_periodically(http: httpx.AsyncClient, db: Database) -> None:
    device = await new_device(http)
    await device.client.upload_attachment(b"soon gone")
    with trio.fail_after(5):
        while await _rows(db):  # noqa: ASYNC110 (the state lives in the database)
            await trio.sleep(0.1)
