"""Hostile input gets a clear 4xx and changes nothing, on every backend."""

from __future__ import annotations

import httpx
import pytest

from relay.client import DeviceKeys
from tests.factories import PASSWORD, new_account, new_device, unique_username

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/users"),
        ("POST", "/v1/sessions"),
        ("POST", "/v1/sessions/refresh"),
    ],
)
@pytest.mark.parametrize(
    "body",
    [
        b'{"username": "\xed\xa0\x80"}',  # invalid UTF-8
        b'{"username": "\\ud800", "password": "x"}',  # lone surrogate
        b"[" * 100_000 + b"]" * 100_000,  # deep nesting
        b'{"username": "a", "password": 1e400}',
        b"\x00\x01\x02",
    ],
)
async def test_undecodable_bodies_are_4xx(
    http: httpx.AsyncClient, method: str, path: str, body: bytes
) -> None:
    response = await http.request(method, path, headers=JSON, content=body)
    assert response.status_code in (400, 422)


async def test_nul_in_credentials(http: httpx.AsyncClient) -> None:
    bad_name = await http.post("/v1/users", json={"username": "a\x00b_c", "password": PASSWORD})
    assert bad_name.status_code == 400
    login = await http.post("/v1/sessions", json={"username": "a\x00bc", "password": PASSWORD})
    assert login.status_code == 401
    username = unique_username()
    password = "nul\x00inside-the-password"
    created = await http.post("/v1/users", json={"username": username, "password": password})
    assert created.status_code == 201
    login = await http.post("/v1/sessions", json={"username": username, "password": password})
    assert login.status_code == 200
    wrong = await http.post(
        "/v1/sessions", json={"username": username, "password": "nul\x00inside-the-passwore"}
    )
    assert wrong.status_code == 401


async def test_nul_in_tokens(http: httpx.AsyncClient) -> None:
    refresh = await http.post("/v1/sessions/refresh", json={"refreshToken": "a\x00b"})
    assert refresh.status_code == 401
    account = await new_account(http)
    logout = await http.request(
        "DELETE", "/v1/sessions", headers=account.auth_headers, json={"refreshToken": "\x00"}
    )
    assert logout.status_code == 200


async def test_nul_in_device_names(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    body = DeviceKeys.generate().create_device_json(name="ph\x00ne")
    created = await http.post("/v1/devices", headers=account.auth_headers, json=body)
    assert created.status_code == 400
    assert created.json() == {"error": "Device name must not contain NUL characters"}
    assert await account.list_devices() == []
    device = await new_device(http, name="kept")
    renamed = await http.put(
        f"/v1/devices/{device.id}", headers=device.headers, json={"name": "\x00"}
    )
    assert renamed.status_code == 400
    assert (await device.client.get_device(device.id))["name"] == "kept"


async def test_nul_in_push_tokens(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    response = await http.put("/v1/push-tokens", headers=device.headers, json={"token": "a\x00"})
    assert response.status_code == 400
    assert response.json() == {"error": "Token must not contain NUL characters"}


@pytest.mark.parametrize(
    "key",
    ["BQ" + "\x00" * 42, "BQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\x00", "Ü" * 44],
)
async def test_non_ascii_and_nul_keys_are_400(http: httpx.AsyncClient, key: str) -> None:
    account = await new_account(http)
    body = DeviceKeys.generate().create_device_json()
    body["identityKey"] = key
    response = await http.post("/v1/devices", headers=account.auth_headers, json=body)
    assert response.status_code == 400
    assert await account.list_devices() == []


@pytest.mark.parametrize(
    "path", ["/v1/devices/%00", "/v1/users/%ff%fe", "/v1/devices/" + "a" * 5000]
)
async def test_strange_paths(http: httpx.AsyncClient, path: str) -> None:
    device = await new_device(http)
    response = await http.get(path, headers=device.headers)
    assert 400 <= response.status_code < 500
