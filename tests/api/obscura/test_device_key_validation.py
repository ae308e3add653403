"""Key validation when a device is created: order and messages (obscura-contract §1.6, §2.5)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from relay.client import DeviceKeys
from relay.crypto import xeddsa
from relay.crypto.keys import encode_base64
from tests.factories import new_account, new_device


def _body(**changes: Any) -> dict[str, Any]:
    body = DeviceKeys.generate(one_time_pre_keys=2).create_device_json()
    for key, value in changes.items():
        if key.startswith("spk_"):
            body["signedPreKey"][key[4:]] = value
        else:
            body[key] = value
    return body


async def _create(http: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    account = await new_account(http)
    response = await http.post("/v1/devices", headers=account.auth_headers, json=body)
    if response.status_code != 201:
        assert await account.list_devices() == [], "a failed creation left a device behind"
    return response


KEY_32 = encode_base64(b"\x05" + bytes(31))
KEY_BAD_PREFIX = encode_base64(b"\x06" + bytes(32))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"identityKey": KEY_32}, "Invalid key length: 32 (expected 33 bytes with 0x05 prefix)"),
        ({"identityKey": KEY_BAD_PREFIX}, "Invalid key prefix (expected 0x05)"),
        ({"identityKey": "not base64!"}, None),
        ({"spk_publicKey": KEY_BAD_PREFIX}, "Invalid key prefix (expected 0x05)"),
        ({"spk_signature": encode_base64(bytes(63))}, "Invalid signature length: 63 (expected 64)"),
        ({"spk_signature": base64.b64encode(bytes(64)).decode().rstrip("=")}, None),
        ({"spk_signature": base64.urlsafe_b64encode(b"\xfb" * 64).decode()}, None),
        ({"oneTimePreKeys": [{"keyId": 1, "publicKey": KEY_32}]}, "Invalid key length: 32"),
    ],
)
async def test_malformed_keys_are_400(
    http: httpx.AsyncClient, changes: dict[str, Any], message: str | None
) -> None:
    response = await _create(http, _body(**changes))
    assert response.status_code == 400
    error = response.json()["error"]
    if message is not None:
        assert error.startswith(message)


async def test_duplicate_one_time_ids_are_checked_first(http: httpx.AsyncClient) -> None:
    pre_keys = [{"keyId": 7, "publicKey": KEY_32}, {"keyId": 7, "publicKey": KEY_32}]
    response = await _create(http, _body(oneTimePreKeys=pre_keys, identityKey="garbage"))
    assert response.status_code == 400
    assert response.json() == {"error": "Duplicate prekey ID: 7"}


async def test_signature_by_another_key_is_rejected(http: httpx.AsyncClient) -> None:
    other = DeviceKeys.generate()
    response = await _create(
        http, _body(spk_signature=encode_base64(other.signed_pre_key_signature))
    )
    assert response.status_code == 400
    assert response.json() == {"error": "Invalid signature"}


@pytest.mark.parametrize("libsignal_convention", [True, False])
@pytest.mark.parametrize("message_form", ["33-byte key", "32-byte u"])
async def test_both_signature_conventions_and_message_forms(
    http: httpx.AsyncClient, libsignal_convention: bool, message_form: str
) -> None:
    keys = DeviceKeys.generate()
    signed = keys.signed_pre_key.public_key
    message = signed if message_form == "33-byte key" else signed[1:]
    keys.signed_pre_key_signature = xeddsa.sign(
        keys.identity.private_key, message, libsignal_convention=libsignal_convention
    )
    assert (await _create(http, keys.create_device_json())).status_code == 201


async def test_pre_key_ids_are_int32(http: httpx.AsyncClient) -> None:
    response = await _create(http, _body(spk_keyId=2**31))
    assert response.status_code == 422
    response = await _create(http, _body(registrationId=-(2**31) - 1))
    assert response.status_code == 422
    assert (await _create(http, _body(registrationId=2**31 - 1))).status_code == 201


@pytest.mark.settings(pre_keys_max=5)
async def test_too_many_one_time_keys(http: httpx.AsyncClient) -> None:
    keys = DeviceKeys.generate(one_time_pre_keys=6)
    response = await _create(http, keys.create_device_json())
    assert response.status_code == 400
    assert response.json() == {"error": "Batch too large. Limit is 5"}
    keys = DeviceKeys.generate(one_time_pre_keys=5)
    assert (await _create(http, keys.create_device_json())).status_code == 201


@pytest.mark.settings(auth_max_devices_per_user=1)
async def test_device_limit_is_checked_before_the_signature(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    bad = _body(spk_signature=encode_base64(bytes(64)))
    response = await http.post("/v1/devices", headers=device.headers, json=bad)
    assert response.status_code == 403


@pytest.mark.settings(auth_max_devices_per_user=1)
async def test_key_encoding_is_checked_before_the_device_limit(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    response = await http.post(
        "/v1/devices", headers=device.headers, json=_body(identityKey=KEY_BAD_PREFIX)
    )
    assert response.status_code == 400


async def test_missing_required_fields_are_422(http: httpx.AsyncClient) -> None:
    for field in ("identityKey", "registrationId", "signedPreKey", "oneTimePreKeys"):
        body = _body()
        del body[field]
        assert (await _create(http, body)).status_code == 422


async def test_empty_one_time_key_list_is_fine(http: httpx.AsyncClient) -> None:
    assert (await _create(http, _body(oneTimePreKeys=[]))).status_code == 201
