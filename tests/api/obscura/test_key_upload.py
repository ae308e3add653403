"""POST /v1/devices/keys: refill rules and device takeover (obscura-contract §2.10)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import func, select

from relay.client import DeviceKeys
from relay.crypto.keys import encode_base64
from storage.db import Database
from storage.ids import now_us, uuid7
from storage.repos import keys as keys_repo
from storage.schema import messages, signed_pre_keys
from tests.factories import Device, new_device


async def upload(
    http: httpx.AsyncClient, device: Device, body: dict[str, object]
) -> httpx.Response:
    return await http.post("/v1/devices/keys", headers=device.headers, json=body)


async def _spk_ids(db: Database, device: Device) -> list[int]:
    statement = select(signed_pre_keys.c.key_id).where(signed_pre_keys.c.device_id == device.id)
    return await db.read(lambda conn: sorted(conn.execute(statement).scalars()))


async def _otpk_count(db: Database, device: Device) -> int:
    return await db.read(lambda conn: keys_repo.count_one_time(conn, device.id))


async def test_refill_requires_a_strictly_greater_signed_pre_key_id(
    http: httpx.AsyncClient,
) -> None:
    device = await new_device(http)  # signed pre-key id 1
    for key_id in (1, 0, -5):
        device.keys.rotate_signed_pre_key(key_id)
        response = await upload(http, device, device.keys.upload_json())
        assert response.status_code == 400
        assert response.json() == {
            "error": f"Signed Pre-Key ID {key_id} must be greater than current ID 1"
        }
    device.keys.rotate_signed_pre_key(2)
    response = await upload(http, device, device.keys.upload_json())
    assert response.status_code == 200
    assert response.content == b""


async def test_one_time_only_refill_still_needs_a_new_signed_pre_key(
    http: httpx.AsyncClient, db: Database
) -> None:
    device = await new_device(http, one_time_pre_keys=0)
    ids = device.keys.add_one_time_pre_keys(3)
    assert (await upload(http, device, device.keys.upload_json(ids))).status_code == 400
    device.keys.rotate_signed_pre_key()
    assert (await upload(http, device, device.keys.upload_json(ids))).status_code == 200
    assert await _otpk_count(db, device) == 3


async def test_older_signed_pre_keys_are_dropped(http: httpx.AsyncClient, db: Database) -> None:
    device = await new_device(http)
    device.keys.rotate_signed_pre_key(5)
    await device.client.upload_keys(device.keys.upload_json())
    assert await _spk_ids(db, device) == [5]
    bundles = await device.client.fetch_bundles(device.user_id)
    assert bundles[0]["signedPreKey"] == device.keys.signed_pre_key_json()


@pytest.mark.settings(pre_keys_max=50)
async def test_oldest_one_time_keys_make_room(http: httpx.AsyncClient, db: Database) -> None:
    device = await new_device(http, one_time_pre_keys=40)
    first_ids = sorted(device.keys.one_time_pre_keys)
    new_ids = device.keys.add_one_time_pre_keys(20)
    device.keys.rotate_signed_pre_key()
    await device.client.upload_keys(device.keys.upload_json(new_ids))
    assert await _otpk_count(db, device) == 50
    remaining = await db.read(
        lambda conn: sorted(
            conn.execute(
                select(keys_repo.one_time_pre_keys.c.key_id).where(
                    keys_repo.one_time_pre_keys.c.device_id == device.id
                )
            ).scalars()
        )
    )
    assert remaining == first_ids[10:] + new_ids


async def test_existing_one_time_ids_are_skipped(http: httpx.AsyncClient, db: Database) -> None:
    device = await new_device(http, one_time_pre_keys=2)
    original = device.keys.one_time_pre_keys_json([1])[0]["publicKey"]
    body = device.keys.upload_json()
    body["oneTimePreKeys"] = [
        {"keyId": 1, "publicKey": encode_base64(b"\x05" + bytes(32))},
        {"keyId": 3, "publicKey": encode_base64(b"\x05" + bytes(32))},
    ]
    device.keys.rotate_signed_pre_key()
    body["signedPreKey"] = device.keys.signed_pre_key_json()
    assert (await upload(http, device, body)).status_code == 200
    assert await _otpk_count(db, device) == 3
    stored = await db.read(
        lambda conn: conn.execute(
            select(keys_repo.one_time_pre_keys.c.public_key).where(
                keys_repo.one_time_pre_keys.c.device_id == device.id,
                keys_repo.one_time_pre_keys.c.key_id == 1,
            )
        ).scalar_one()
    )
    assert encode_base64(bytes(stored)) == original


@pytest.mark.settings(pre_keys_max=3)
async def test_upload_batch_limit(http: httpx.AsyncClient) -> None:
    device = await new_device(http, one_time_pre_keys=0)
    ids = device.keys.add_one_time_pre_keys(4)
    device.keys.rotate_signed_pre_key()
    response = await upload(http, device, device.keys.upload_json(ids))
    assert response.status_code == 400
    assert response.json() == {"error": "Batch too large. Limit is 3"}


async def test_identity_key_requires_registration_id(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    body = device.keys.upload_json(include_identity=True)
    del body["registrationId"]
    response = await upload(http, device, body)
    assert response.status_code == 400
    assert response.json() == {"error": "registrationId is required when identityKey is provided"}


async def test_check_order(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    body = device.keys.upload_json(include_identity=True)
    del body["registrationId"]
    body["oneTimePreKeys"] = [{"keyId": 1, "publicKey": "x"}, {"keyId": 1, "publicKey": "x"}]
    # registrationId first, then duplicates, then decoding.
    assert (await upload(http, device, body)).json()["error"].startswith("registrationId")
    body["registrationId"] = 1
    assert (await upload(http, device, body)).json() == {"error": "Duplicate prekey ID: 1"}
    body["oneTimePreKeys"] = [{"keyId": 1, "publicKey": "x"}]
    assert (await upload(http, device, body)).status_code == 400


async def test_refill_signature_is_checked_against_the_stored_identity(
    http: httpx.AsyncClient,
) -> None:
    device = await new_device(http)
    stranger = DeviceKeys.generate()
    device.keys.rotate_signed_pre_key()
    body = device.keys.upload_json()
    body["signedPreKey"]["signature"] = encode_base64(
        stranger.signed_pre_key_signature  # signed by someone else's identity
    )
    response = await upload(http, device, body)
    assert response.status_code == 400
    assert response.json() == {"error": "Invalid signature"}


async def test_same_identity_key_is_a_normal_refill(http: httpx.AsyncClient, db: Database) -> None:
    device = await new_device(http, one_time_pre_keys=2)
    device.keys.rotate_signed_pre_key(1)  # not greater: refused as a refill would be
    body = device.keys.upload_json(include_identity=True)
    assert (await upload(http, device, body)).status_code == 400
    device.keys.rotate_signed_pre_key(2)
    ids = device.keys.add_one_time_pre_keys(1)
    body = device.keys.upload_json(ids, include_identity=True)
    assert (await upload(http, device, body)).status_code == 200
    assert await _otpk_count(db, device) == 3


async def _queue_message(db: Database, sender: Device, recipient: Device) -> None:
    now = now_us()
    row = {
        "id": uuid7(),
        "sender_id": sender.user_id,
        "sender_device_id": sender.id,
        "device_id": recipient.id,
        "submission_id": uuid.uuid4(),
        "content": b"ciphertext",
        "created_at": now,
        "expires_at": now + 10**9,
    }
    await db.write(lambda conn: conn.execute(messages.insert().values(row)))


async def _pending(db: Database, device: Device) -> int:
    statement = select(func.count()).select_from(messages).where(messages.c.device_id == device.id)
    return await db.read(lambda conn: int(conn.execute(statement).scalar_one()))


async def test_takeover_replaces_identity_and_wipes_keys_and_messages(
    http: httpx.AsyncClient, db: Database
) -> None:
    device = await new_device(http, one_time_pre_keys=5)
    sender = await new_device(http)
    await _queue_message(db, sender, device)
    await _queue_message(db, device, sender)
    await device.client.put_push_token("push-token")
    session_before = device.client.session

    fresh = DeviceKeys.generate(one_time_pre_keys=2, signed_pre_key_id=1)  # id may go down
    fresh.rotate_signed_pre_key(1)
    response = await upload(http, device, fresh.upload_json([1, 2], include_identity=True))
    assert response.status_code == 200

    identity = await db.read(lambda conn: keys_repo.get_identity(conn, device.id))
    assert identity is not None
    assert identity.identity_key == fresh.identity.public_key
    assert identity.registration_id == fresh.registration_id
    assert await _spk_ids(db, device) == [1]
    assert await _otpk_count(db, device) == 2
    assert await _pending(db, device) == 0
    # Messages the device sent to others are not pending *for* it and stay.
    assert await _pending(db, sender) == 1
    # Tokens and device id survive a takeover.
    assert device.client.session is session_before
    assert (await http.get("/v1/devices", headers=device.headers)).status_code == 200
    bundle = (await sender.client.fetch_bundles(device.user_id))[0]
    assert bundle["identityKey"] == encode_base64(fresh.identity.public_key)
    assert bundle["registrationId"] == fresh.registration_id


async def test_takeover_signature_must_match_the_new_identity(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    fresh = DeviceKeys.generate()
    body = fresh.upload_json(include_identity=True)
    body["signedPreKey"] = device.keys.signed_pre_key_json()  # signed by the old identity
    response = await upload(http, device, body)
    assert response.status_code == 400
    assert response.json() == {"error": "Invalid signature"}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_other_methods_on_the_key_route_are_405(http: httpx.AsyncClient, method: str) -> None:
    response = await http.request(method, "/v1/devices/keys")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.content == b""
