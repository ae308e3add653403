"""Device provisioning and management (obscura-contract §2.5-2.9)."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from relay.client import DeviceKeys
from storage.db import Database
from storage.repos import keys as keys_repo
from tests.factories import jwt_claims, new_account, new_device

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


async def test_create_device_returns_a_device_scoped_session(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    keys = DeviceKeys.generate(one_time_pre_keys=3)
    response = await http.post(
        "/v1/devices", headers=account.auth_headers, json=keys.create_device_json("phone")
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "refreshToken", "expiresAt", "deviceId"}
    claims = jwt_claims(body["token"])
    assert claims["device_id"] == body["deviceId"]
    assert claims["sub"] == str(account.session.user_id)  # type: ignore[union-attr]
    assert uuid.UUID(body["deviceId"]).version == 7


async def test_device_is_created_for_the_token_user_whatever_the_scope(
    http: httpx.AsyncClient,
) -> None:
    first = await new_device(http)
    second = await new_device(http, account=first.client)
    assert second.user_id == first.user_id
    assert {d["deviceId"] for d in await second.client.list_devices()} == {
        str(first.id),
        str(second.id),
    }


@pytest.mark.settings(auth_max_devices_per_user=2)
async def test_device_limit_is_403(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    for _ in range(2):
        await new_device(http, account=account)
    response = await http.post(
        "/v1/devices",
        headers=account.auth_headers,
        json=DeviceKeys.generate().create_device_json(),
    )
    assert response.status_code == 403
    assert response.json() == {"error": "Device limit reached. Maximum allowed is 2."}


@pytest.mark.settings(auth_max_devices_per_user=3)
async def test_concurrent_creations_respect_the_limit(http: httpx.AsyncClient) -> None:
    import trio

    account = await new_account(http)
    statuses: list[int] = []

    async def create() -> None:
        body = DeviceKeys.generate().create_device_json()
        response = await http.post("/v1/devices", headers=account.auth_headers, json=body)
        statuses.append(response.status_code)

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(create)
    assert sorted(statuses) == [201] * 3 + [403] * 5
    assert len(await account.list_devices()) == 3


async def test_list_devices_oldest_first(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    assert await account.list_devices() == []
    created = [await new_device(http, account=account, name=f"d{i}") for i in range(3)]
    listed = await account.list_devices()
    assert [d["deviceId"] for d in listed] == [str(d.id) for d in created]
    assert [d["name"] for d in listed] == ["d0", "d1", "d2"]
    for device in listed:
        assert set(device) == {"deviceId", "name", "createdAt"}
        assert RFC3339.match(device["createdAt"])


async def test_name_is_null_when_unset(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    assert (await device.client.get_device(device.id))["name"] is None


async def test_get_rename_and_clear(http: httpx.AsyncClient) -> None:
    device = await new_device(http, name="old")
    fetched = await device.client.get_device(device.id)
    assert fetched["name"] == "old"
    renamed = await device.client.rename_device(device.id, "new")
    assert renamed == {**fetched, "name": "new"}
    cleared = await http.put(f"/v1/devices/{device.id}", headers=device.headers, json={})
    assert cleared.status_code == 200
    assert cleared.json()["name"] is None
    assert (await device.client.rename_device(device.id, None))["name"] is None


@pytest.mark.parametrize(("length", "status"), [(100, 200), (101, 400)])
async def test_name_length_limit(http: httpx.AsyncClient, length: int, status: int) -> None:
    device = await new_device(http)
    response = await http.put(
        f"/v1/devices/{device.id}", headers=device.headers, json={"name": "é" * length}
    )
    assert response.status_code == status
    account = await new_account(http)
    body = DeviceKeys.generate().create_device_json(name="n" * length)
    created = await http.post("/v1/devices", headers=account.auth_headers, json=body)
    assert created.status_code == (201 if status == 200 else 400)
    if status == 400:
        assert created.json() == {"error": "Device name must be at most 100 characters"}
        assert await account.list_devices() == []


async def test_other_users_devices_are_404(http: httpx.AsyncClient) -> None:
    owner = await new_device(http)
    stranger = await new_account(http)
    path = f"/v1/devices/{owner.id}"
    for method, kwargs in [("GET", {}), ("PUT", {"json": {"name": "x"}}), ("DELETE", {})]:
        response = await http.request(method, path, headers=stranger.auth_headers, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 404
        assert response.json() == {"error": "Not found"}
    assert (await owner.client.get_device(owner.id))["name"] is None


async def test_unknown_device_is_404(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    response = await http.get(f"/v1/devices/{uuid.uuid4()}", headers=account.auth_headers)
    assert response.status_code == 404


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_non_uuid_path_is_plain_400(http: httpx.AsyncClient, method: str) -> None:
    account = await new_account(http)
    response = await http.request(
        method, "/v1/devices/not-a-uuid", headers=account.auth_headers, json={}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")


async def test_uuid_path_spellings(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    for spelling in (device.id.hex, str(device.id).upper(), f"{{{device.id}}}"):
        response = await http.get(f"/v1/devices/{spelling}", headers=device.headers)
        assert response.status_code == 200


async def test_delete_cascades(http: httpx.AsyncClient, db: Database) -> None:
    device = await new_device(http, one_time_pre_keys=3)
    await device.client.put_push_token("token-1")
    fetcher = await new_device(http)
    response = await http.delete(f"/v1/devices/{device.id}", headers=device.headers)
    assert response.status_code == 200
    assert response.content == b""
    assert (
        await http.get(f"/v1/users/{device.user_id}", headers=fetcher.headers)
    ).status_code == 404
    identity = await db.read(lambda conn: keys_repo.get_identity(conn, device.id))
    assert identity is None
    remaining = await db.read(lambda conn: keys_repo.count_one_time(conn, device.id))
    assert remaining == 0
    again = await http.delete(f"/v1/devices/{device.id}", headers=device.headers)
    assert again.status_code == 404
