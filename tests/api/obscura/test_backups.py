"""Per-device versioned backups (obscura-contract §2.17, §5.4)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

from relay.client import ApiError, Backup
from relay.process.server import Listening
from relay.registry import Services
from relay.services.backups import Verdict, expected_version, judge, parse_int32
from storage.db import Database
from storage.repos import backups as backups_repo
from storage.repos.backups import BackupSlot
from tests.factories import Device, new_account, new_device
from tests.rawhttp import HeldRequest, upload_head

CONTENT = b"encrypted backup blob " * 4  # 88 bytes, above the 32-byte minimum


def _objects(blob_root: Path, device: Device) -> list[str]:
    folder = blob_root / "backups" / str(device.id)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


async def _slot(db: Database, device: Device) -> BackupSlot | None:
    return await db.read(lambda conn: backups_repo.get(conn, device.id))


async def _post(
    http: httpx.AsyncClient, device: Device, body: bytes, **headers: str
) -> httpx.Response:
    extra = {name.replace("_", "-"): value for name, value in headers.items()}
    return await http.post("/v1/backup", content=body, headers={**device.headers, **extra})


# --- sans-IO rules -----------------------------------------------------------------------


def _state(current: int, state: str = "ACTIVE", pending_at: int | None = None) -> BackupSlot:
    return BackupSlot(
        device_id=uuid.uuid4(),
        current_version=current,
        state=state,
        pending_version=None if pending_at is None else current + 1,
        pending_at=pending_at,
        current_object=None,
        pending_object=None,
    )


def test_reservation_rules() -> None:
    assert judge(_state(3), 3, stale_before=100) is Verdict.RESERVE
    assert judge(_state(3), 2, stale_before=100) is Verdict.STALE_VERSION
    assert judge(_state(3, "UPLOADING", 150), 3, stale_before=100) is Verdict.IN_PROGRESS
    assert judge(_state(3, "UPLOADING", 50), 3, stale_before=100) is Verdict.TAKE_OVER
    assert judge(_state(3, "UPLOADING", 50), 4, stale_before=100) is Verdict.STALE_VERSION


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1), ('"7"', 7), ("+3", 3), ("-2", -2), ("2147483647", 2**31 - 1)],
)
def test_versions_parse_as_int32(text: str, value: int) -> None:
    assert parse_int32(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1.0", " 1", "2147483648", "1_0", '"'])
def test_other_versions_do_not_parse(text: str) -> None:
    assert parse_int32(text) is None


def test_if_none_match_wins_over_if_match() -> None:
    assert expected_version('"5"', "*") == 0
    assert expected_version('"5"', None) == 5


# --- the lifecycle -----------------------------------------------------------------------


async def test_backup_lifecycle(http: httpx.AsyncClient, blob_root: Path) -> None:
    device = await new_device(http)
    assert (await http.get("/v1/backup", headers=device.headers)).status_code == 404
    assert (await http.head("/v1/backup", headers=device.headers)).status_code == 404

    first = await _post(http, device, CONTENT, if_none_match="*")
    assert first.status_code == 200
    assert first.content == b""
    assert first.headers["etag"] == '"1"'

    download = await http.get("/v1/backup", headers=device.headers)
    assert download.status_code == 200
    assert download.content == CONTENT
    assert download.headers["etag"] == '"1"'
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-length"] == str(len(CONTENT))

    head = await http.head("/v1/backup", headers=device.headers)
    assert head.status_code == 200
    assert head.headers["etag"] == '"1"'
    assert head.headers["content-length"] == str(len(CONTENT))
    assert head.content == b""

    second = await _post(http, device, CONTENT * 2, if_match='"1"')
    assert second.headers["etag"] == '"2"'
    assert await device.client.download_backup() == Backup(2, CONTENT * 2)
    # The previous version's object is gone; only the current one remains.
    assert len(_objects(blob_root, device)) == 1
    assert _objects(blob_root, device)[0].startswith("v2.")


async def test_client_round_trip(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    assert await device.client.backup_info() is None
    version = await device.client.upload_backup(CONTENT, replaces=None)
    assert await device.client.backup_info() == (version, len(CONTENT))
    assert await device.client.download_backup(have=version) is None
    newer = await device.client.upload_backup(b"n" * 40, replaces=version)
    assert await device.client.download_backup(have=version) == Backup(newer, b"n" * 40)


async def test_backups_are_per_device(http: httpx.AsyncClient) -> None:
    first = await new_device(http)
    second = await new_device(http, account=first.client)
    await first.client.upload_backup(CONTENT, replaces=None)
    assert await second.client.backup_info() is None
    assert await second.client.upload_backup(b"s" * 32, replaces=None) == 1
    assert await first.client.download_backup() == Backup(1, CONTENT)


# --- authentication and preconditions ----------------------------------------------------


async def test_a_device_token_is_required(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    for method in ("GET", "HEAD", "POST"):
        assert (await http.request(method, "/v1/backup")).status_code == 401
        response = await http.request(
            method,
            "/v1/backup",
            headers={**account.auth_headers, "If-None-Match": "*"},
            content=CONTENT if method == "POST" else None,
        )
        assert response.status_code == 403
        if method != "HEAD":
            assert response.json() == {"error": "Device-scoped token required"}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"if_none_match": '"1"'}, "Invalid If-None-Match header"),
        ({}, "Missing If-Match or If-None-Match header"),
        ({"if_match": "abc"}, "Invalid version in If-Match header"),
        ({"if_match": '"1.5"'}, "Invalid version in If-Match header"),
    ],
)
async def test_bad_preconditions_are_400(
    http: httpx.AsyncClient, headers: dict[str, str], message: str
) -> None:
    device = await new_device(http)
    response = await _post(http, device, CONTENT, **headers)
    assert response.status_code == 400
    assert response.json() == {"error": message}


async def test_if_none_match_star_takes_precedence(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    response = await _post(http, device, CONTENT, if_none_match="*", if_match='"7"')
    assert response.headers["etag"] == '"1"'


async def test_if_match_zero_is_a_first_upload(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    assert (await _post(http, device, CONTENT, if_match="0")).headers["etag"] == '"1"'


async def test_a_stale_version_is_412(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    await _post(http, device, CONTENT, if_none_match="*")
    again = await _post(http, device, CONTENT, if_none_match="*")
    assert again.status_code == 412
    assert again.json() == {"error": "Precondition failed"}
    wrong = await _post(http, device, CONTENT, if_match='"5"')
    assert wrong.status_code == 412
    assert (await device.client.download_backup()) == Backup(1, CONTENT)


async def test_a_failed_first_attempt_leaves_an_empty_slot(
    http: httpx.AsyncClient, db: Database
) -> None:
    device = await new_device(http)
    assert (await _post(http, device, CONTENT, if_match='"3"')).status_code == 412
    slot = await _slot(db, device)
    assert slot is not None
    assert (slot.current_version, slot.state) == (0, "ACTIVE")
    # The reference's quirk: the empty version 0 matches If-None-Match "0".
    cached = await http.get("/v1/backup", headers={**device.headers, "If-None-Match": '"0"'})
    assert cached.status_code == 304
    assert (await http.get("/v1/backup", headers=device.headers)).status_code == 404


# --- sizes -------------------------------------------------------------------------------


async def test_size_limits(relay: Listening, http: httpx.AsyncClient, db: Database) -> None:
    device = await new_device(http)
    small = await _post(http, device, b"x" * 31, if_none_match="*")
    assert small.status_code == 400
    assert small.json() == {"error": "Backup too small"}
    # Refused from the declared length alone: no body is ever sent.
    length = str(2 * 1024 * 1024 + 1)
    head = upload_head(
        "/v1/backup", {**device.headers, "If-None-Match": "*", "Content-Length": length}
    )
    held = await HeldRequest.start(relay.api_url, head)
    try:
        assert await held.response() == (413, b'{"error":"Payload too large"}')
    finally:
        await held.aclose()
    assert await _slot(db, device) is None  # refused before the slot was touched
    assert (await _post(http, device, b"x" * (2 * 1024 * 1024), if_none_match="*")).is_success


async def test_upload_without_length_is_411(http: httpx.AsyncClient) -> None:
    device = await new_device(http)

    async def chunked() -> AsyncIterator[bytes]:
        yield CONTENT

    response = await http.post(
        "/v1/backup", content=chunked(), headers={**device.headers, "If-None-Match": "*"}
    )
    assert response.status_code == 411


# --- conditional downloads ---------------------------------------------------------------


@pytest.mark.parametrize("tag", ['"1"', "1"])
async def test_the_current_version_is_304(http: httpx.AsyncClient, tag: str) -> None:
    device = await new_device(http)
    await device.client.upload_backup(CONTENT, replaces=None)
    response = await http.get("/v1/backup", headers={**device.headers, "If-None-Match": tag})
    assert response.status_code == 304
    assert response.headers["etag"] == '"1"'
    other = await http.get("/v1/backup", headers={**device.headers, "If-None-Match": '"2"'})
    assert other.status_code == 200


async def test_a_record_without_its_object_is_404(http: httpx.AsyncClient, blob_root: Path) -> None:
    device = await new_device(http)
    await device.client.upload_backup(CONTENT, replaces=None)
    for name in _objects(blob_root, device):
        (blob_root / "backups" / str(device.id) / name).unlink()
    assert (await http.get("/v1/backup", headers=device.headers)).status_code == 404
    assert (await http.head("/v1/backup", headers=device.headers)).status_code == 404


# --- concurrent uploads ------------------------------------------------------------------


async def _held_upload(relay: Listening, device: Device, size: int, **headers: str) -> HeldRequest:
    extra = {name.replace("_", "-"): value for name, value in headers.items()}
    head = upload_head("/v1/backup", {**device.headers, **extra, "Content-Length": str(size)})
    held = await HeldRequest.start(relay.api_url, head)
    await held.send(b"h" * (size // 2))
    return held


async def _wait_for_state(db: Database, device: Device, state: str) -> None:
    with trio.fail_after(5):
        while (slot := await _slot(db, device)) is None or slot.state != state:  # noqa: ASYNC110
            await trio.sleep(0.02)


async def test_a_second_upload_during_the_first_is_409(
    relay: Listening, http: httpx.AsyncClient, db: Database
) -> None:
    device = await new_device(http)
    held = await _held_upload(relay, device, 100, if_none_match="*")
    try:
        await _wait_for_state(db, device, "UPLOADING")
        second = await _post(http, device, CONTENT, if_none_match="*")
        assert second.status_code == 409
        assert second.json() == {"error": "Upload already in progress"}
        await held.send(b"h" * 50)
        status, _ = await held.response()
        assert status == 200
    finally:
        await held.aclose()
    assert (await device.client.download_backup()) == Backup(1, b"h" * 100)


async def test_an_abandoned_upload_keeps_the_slot_until_stale(
    relay: Listening, http: httpx.AsyncClient, db: Database
) -> None:
    device = await new_device(http)
    held = await _held_upload(relay, device, 100, if_none_match="*")
    await _wait_for_state(db, device, "UPLOADING")
    await held.aclose()  # the client went away mid-body
    await trio.sleep(0.2)
    refused = await _post(http, device, CONTENT, if_none_match="*")
    assert refused.status_code == 409


@pytest.mark.settings(backup_stale_threshold_mins=0)
async def test_a_stale_upload_is_taken_over(
    relay: Listening, http: httpx.AsyncClient, db: Database, blob_root: Path
) -> None:
    device = await new_device(http)
    held = await _held_upload(relay, device, 100, if_none_match="*")
    try:
        await _wait_for_state(db, device, "UPLOADING")
        taker = await _post(http, device, CONTENT, if_none_match="*")
        assert taker.status_code == 200
        assert taker.headers["etag"] == '"1"'
        # The overtaken upload finishes its body, then learns it lost the slot.
        await held.send(b"h" * 50)
        status, body = await held.response()
        assert status == 409
        assert body == b'{"error":"Concurrent modification"}'
    finally:
        await held.aclose()
    assert await device.client.download_backup() == Backup(1, CONTENT)
    assert len(_objects(blob_root, device)) == 1


@pytest.mark.settings(backup_stale_threshold_mins=0)
async def test_stale_uploads_are_reset(
    relay: Listening,
    http: httpx.AsyncClient,
    db: Database,
    services: Services,
    blob_root: Path,
) -> None:
    device = await new_device(http)
    await device.client.upload_backup(CONTENT, replaces=None)
    held = await _held_upload(relay, device, 100, if_match='"1"')
    await _wait_for_state(db, device, "UPLOADING")
    await held.aclose()
    assert await services.backups.reset_stale_uploads(batch_size=1) == 1
    slot = await _slot(db, device)
    assert slot is not None
    assert (slot.state, slot.current_version, slot.pending_version) == ("ACTIVE", 1, None)
    assert await device.client.download_backup() == Backup(1, CONTENT)
    assert await device.client.upload_backup(b"after reset" * 4, replaces=1) == 2
    assert len(_objects(blob_root, device)) == 1


async def test_unauthorised_users_cannot_read_others(http: httpx.AsyncClient) -> None:
    owner = await new_device(http)
    other = await new_device(http)
    await owner.client.upload_backup(CONTENT, replaces=None)
    with pytest.raises(ApiError) as caught:
        await other.client.download_backup()
    assert caught.value.status == 404


async def test_wrong_methods_are_405(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    response = await http.delete("/v1/backup", headers=device.headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET,HEAD,POST"


async def test_deleting_the_device_deletes_its_backup(
    http: httpx.AsyncClient, db: Database, blob_root: Path
) -> None:
    device = await new_device(http)
    await device.client.upload_backup(CONTENT, replaces=None)
    assert len(_objects(blob_root, device)) == 1
    await device.client.delete_device(device.id)
    assert await _slot(db, device) is None
    assert _objects(blob_root, device) == []


async def test_a_deleted_devices_unexpired_token_is_401_and_stores_nothing(
    http: httpx.AsyncClient, db: Database, blob_root: Path
) -> None:
    device = await new_device(http)
    headers = dict(device.headers)
    await device.client.delete_device(device.id)
    upload = await http.post(
        "/v1/backup", content=CONTENT, headers={**headers, "If-None-Match": "*"}
    )
    assert upload.status_code == 401
    for method in ("GET", "HEAD"):
        assert (await http.request(method, "/v1/backup", headers=headers)).status_code == 401
    assert await _slot(db, device) is None
    assert _objects(blob_root, device) == []
