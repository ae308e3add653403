"""GET /v1/users/{userId}: bundles and one-time pre-key consumption (obscura-contract §2.11)."""

from __future__ import annotations

import uuid

import httpx
import trio

from relay.crypto.keys import encode_base64
from tests.factories import new_account, new_device


async def test_one_bundle_per_device_with_one_consumed_key(http: httpx.AsyncClient) -> None:
    first = await new_device(http, one_time_pre_keys=2, name="a")
    second = await new_device(http, one_time_pre_keys=1, account=first.client, name="b")
    fetcher = await new_device(http)

    bundles = await fetcher.client.fetch_bundles(first.user_id)
    by_device = {b["deviceId"]: b for b in bundles}
    assert set(by_device) == {str(first.id), str(second.id)}
    for device in (first, second):
        bundle = by_device[str(device.id)]
        assert set(bundle) == {
            "deviceId",
            "registrationId",
            "identityKey",
            "signedPreKey",
            "oneTimePreKey",
        }
        assert bundle["identityKey"] == encode_base64(device.keys.identity.public_key)
        assert bundle["registrationId"] == device.keys.registration_id
        assert bundle["signedPreKey"] == device.keys.signed_pre_key_json()
        otpk = bundle["oneTimePreKey"]
        assert otpk in device.keys.one_time_pre_keys_json()

    again = {b["deviceId"]: b for b in await fetcher.client.fetch_bundles(first.user_id)}
    assert again[str(second.id)]["oneTimePreKey"] is None
    assert again[str(first.id)]["oneTimePreKey"] not in (
        None,
        by_device[str(first.id)]["oneTimePreKey"],
    )


async def test_exhausted_devices_still_return_bundles(http: httpx.AsyncClient) -> None:
    target = await new_device(http, one_time_pre_keys=0)
    fetcher = await new_device(http)
    for _ in range(2):
        bundles = await fetcher.client.fetch_bundles(target.user_id)
        assert len(bundles) == 1
        assert bundles[0]["oneTimePreKey"] is None


async def test_own_bundles_can_be_fetched(http: httpx.AsyncClient) -> None:
    device = await new_device(http, one_time_pre_keys=1)
    bundles = await device.client.fetch_bundles(device.user_id)
    assert bundles[0]["oneTimePreKey"] is not None
    assert (await device.client.fetch_bundles(device.user_id))[0]["oneTimePreKey"] is None


async def test_unknown_user_and_user_without_devices_are_404(http: httpx.AsyncClient) -> None:
    fetcher = await new_device(http)
    empty = await new_account(http)
    assert empty.session is not None
    for user in (uuid.uuid4(), empty.session.user_id):
        response = await http.get(f"/v1/users/{user}", headers=fetcher.headers)
        assert response.status_code == 404
        assert response.json() == {"error": "Not found"}


async def test_non_uuid_user_is_400(http: httpx.AsyncClient) -> None:
    fetcher = await new_device(http)
    response = await http.get("/v1/users/bob", headers=fetcher.headers)
    assert response.status_code == 400


async def test_concurrent_fetches_never_share_a_key(http: httpx.AsyncClient) -> None:
    target = await new_device(http, one_time_pre_keys=10)
    fetchers = [await new_device(http) for _ in range(4)]
    seen: list[int | None] = []

    async def fetch(headers: dict[str, str]) -> None:
        for _ in range(5):
            response = await http.get(f"/v1/users/{target.user_id}", headers=headers)
            assert response.status_code == 200
            otpk = response.json()[0]["oneTimePreKey"]
            seen.append(None if otpk is None else otpk["keyId"])

    async with trio.open_nursery() as nursery:
        for fetcher in fetchers:
            nursery.start_soon(fetch, fetcher.headers)
    handed_out = [key for key in seen if key is not None]
    assert len(seen) == 20
    assert sorted(handed_out) == sorted(target.keys.one_time_pre_keys)
    assert seen.count(None) == 10
