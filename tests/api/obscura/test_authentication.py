"""Bearer tokens, scopes, and the order of 401 / 4xx / 403 (obscura-contract §1.4-1.5)."""

from __future__ import annotations

import base64
import json
import time
import uuid

import httpx
import pytest

from relay.client import DeviceKeys
from relay.crypto.jwt import JwtCodec
from tests.conftest import TEST_JWT_SECRET
from tests.factories import new_account, new_device

PROTECTED = [
    ("DELETE", "/v1/sessions"),
    ("POST", "/v1/devices"),
    ("GET", "/v1/devices"),
    ("GET", f"/v1/devices/{uuid.uuid4()}"),
    ("PUT", f"/v1/devices/{uuid.uuid4()}"),
    ("DELETE", f"/v1/devices/{uuid.uuid4()}"),
    ("POST", "/v1/devices/keys"),
    ("GET", f"/v1/users/{uuid.uuid4()}"),
    ("PUT", "/v1/push-tokens"),
]


def _forge(claims: dict[str, object], secret: bytes = TEST_JWT_SECRET.encode()) -> str:
    return JwtCodec(secret).encode(
        uuid.UUID(str(claims["sub"])),
        None if claims.get("device_id") is None else uuid.UUID(str(claims["device_id"])),
        int(str(claims["exp"])),
    )


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_no_token_is_401_before_anything_else(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await http.request(method, path)
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}


@pytest.mark.parametrize(
    "header",
    [
        "bearer {token}",
        "Bearer  {token}x",
        "Token {token}",
        "{token}",
        "Bearer",
        "Bearer not.a.jwt",
        "Basic dXNlcjpwYXNz",
    ],
)
async def test_malformed_authorization_is_401(http: httpx.AsyncClient, header: str) -> None:
    client = await new_account(http)
    assert client.session is not None
    value = header.format(token=client.session.token)
    response = await http.get("/v1/devices", headers={"Authorization": value})
    assert response.status_code == 401


async def test_non_ascii_authorization_is_401(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/devices", headers={"Authorization": "Bearer tök".encode()})
    assert response.status_code == 401


async def test_forged_and_expired_tokens_are_401(http: httpx.AsyncClient) -> None:
    now = int(time.time())
    user = str(uuid.uuid4())
    wrong_key = _forge({"sub": user, "exp": now + 600}, secret=b"w" * 40)
    expired = _forge({"sub": user, "exp": now - 120})
    for token in (wrong_key, expired):
        response = await http.get("/v1/devices", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401


async def test_expiry_leeway_applies_to_requests(http: httpx.AsyncClient) -> None:
    token = _forge({"sub": str(uuid.uuid4()), "exp": int(time.time()) - 20})
    response = await http.get("/v1/devices", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"devices": []}


async def test_alg_none_is_401(http: httpx.AsyncClient) -> None:
    def segment(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    token = f"{segment({'alg': 'none'})}.{segment({'sub': str(uuid.uuid4()), 'exp': 2**40})}."
    response = await http.get("/v1/devices", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


SOME_USER = uuid.uuid4()


def _valid_bodies() -> dict[tuple[str, str], dict[str, object]]:
    keys = DeviceKeys.generate(one_time_pre_keys=1)
    return {
        ("POST", "/v1/devices/keys"): keys.upload_json([1]),
        ("PUT", "/v1/push-tokens"): {"token": "abc"},
        ("GET", f"/v1/users/{SOME_USER}"): {},
    }


@pytest.mark.parametrize(("method", "path"), list(_valid_bodies()))
async def test_user_scoped_token_is_403_on_device_endpoints(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    client = await new_account(http)
    body = _valid_bodies()[(method, path)]
    kwargs: dict[str, object] = {"json": body} if method != "GET" else {}
    response = await http.request(method, path, headers=client.auth_headers, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 403
    assert response.json() == {"error": "Device-scoped token required"}


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/v1/devices/keys"), ("PUT", "/v1/push-tokens")]
)
async def test_body_problems_come_before_the_scope_check(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    client = await new_account(http)
    no_type = await http.request(method, path, headers=client.auth_headers, content=b"{}")
    assert no_type.status_code == 415
    wrong_shape = await http.request(method, path, headers=client.auth_headers, json={})
    assert wrong_shape.status_code == 422


async def test_device_scoped_token_works_on_user_endpoints(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    response = await http.get("/v1/devices", headers=device.headers)
    assert response.status_code == 200
    assert [d["deviceId"] for d in response.json()["devices"]] == [str(device.id)]


async def test_tokens_of_a_deleted_device_stay_valid_where_no_device_is_needed(
    http: httpx.AsyncClient,
) -> None:
    device = await new_device(http)
    await device.client.delete_device(device.id)
    listing = await http.get("/v1/devices", headers=device.headers)
    assert listing.status_code == 200
    assert listing.json() == {"devices": []}
    # Operations that act as the deleted device are refused instead of failing.
    upload = await http.post(
        "/v1/devices/keys", headers=device.headers, json=device.keys.upload_json()
    )
    assert upload.status_code == 401
    push = await http.put("/v1/push-tokens", headers=device.headers, json={"token": "t"})
    assert push.status_code == 401
