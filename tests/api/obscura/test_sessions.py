"""Login, refresh-token rotation and logout (obscura-contract §2.2-2.4)."""

from __future__ import annotations

import uuid

import httpx
import pytest
import trio

from relay.client import ApiError, ObscuraClient
from relay.crypto.jwt import JwtCodec
from relay.crypto.passwords import PasswordHashing
from relay.services.sessions import SessionIssuer, SessionService
from storage.db import Database
from storage.repos import users
from tests.factories import PASSWORD, jwt_claims, new_account, new_device, unique_username


async def login(http: httpx.AsyncClient, body: dict[str, object]) -> httpx.Response:
    return await http.post("/v1/sessions", json=body)


async def test_login_is_user_scoped_by_default(http: httpx.AsyncClient) -> None:
    username = unique_username()
    account = await new_account(http, username)
    response = await login(http, {"username": username, "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert "deviceId" not in body
    assert jwt_claims(body["token"])["sub"] == str(account.session.user_id)  # type: ignore[union-attr]


async def test_unknown_user_and_wrong_password_look_the_same(http: httpx.AsyncClient) -> None:
    username = unique_username()
    await new_account(http, username)
    wrong = await login(http, {"username": username, "password": "wrong password!"})
    unknown = await login(http, {"username": unique_username(), "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"error": "Unauthorized"}


async def test_login_lowercases_the_username(http: httpx.AsyncClient) -> None:
    username = unique_username()
    await new_account(http, username)
    response = await login(http, {"username": username.upper(), "password": PASSWORD})
    assert response.status_code == 200


async def test_login_with_own_device_is_device_scoped(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    body = {"username": device.username, "password": PASSWORD, "deviceId": str(device.id)}
    response = await login(http, body)
    assert response.status_code == 200
    assert response.json()["deviceId"] == str(device.id)
    assert jwt_claims(response.json()["token"])["device_id"] == str(device.id)


@pytest.mark.parametrize("owner", ["nobody", "someone else"])
async def test_login_with_foreign_device_is_user_scoped(
    http: httpx.AsyncClient, owner: str
) -> None:
    username = unique_username()
    await new_account(http, username)
    foreign = uuid.uuid4() if owner == "nobody" else (await new_device(http)).id
    body = {"username": username, "password": PASSWORD, "deviceId": str(foreign)}
    response = await login(http, body)
    assert response.status_code == 200
    assert "deviceId" not in response.json()
    assert "device_id" not in jwt_claims(response.json()["token"])


async def test_invalid_device_id_is_checked_before_credentials(http: httpx.AsyncClient) -> None:
    body = {"username": unique_username(), "password": "irrelevant", "deviceId": "not-a-uuid"}
    response = await login(http, body)
    assert response.status_code == 400
    assert response.json() == {"error": "Invalid device_id"}


async def test_null_device_id_means_none(http: httpx.AsyncClient) -> None:
    username = unique_username()
    await new_account(http, username)
    response = await login(http, {"username": username, "password": PASSWORD, "deviceId": None})
    assert response.status_code == 200


async def test_each_login_issues_a_new_refresh_token(http: httpx.AsyncClient) -> None:
    username = unique_username()
    await new_account(http, username)
    first = (await login(http, {"username": username, "password": PASSWORD})).json()
    second = (await login(http, {"username": username, "password": PASSWORD})).json()
    assert first["refreshToken"] != second["refreshToken"]
    for token in (first["refreshToken"], second["refreshToken"]):
        refreshed = await http.post("/v1/sessions/refresh", json={"refreshToken": token})
        assert refreshed.status_code == 200


async def test_refresh_rotates_and_spends_the_old_token(http: httpx.AsyncClient) -> None:
    client = await new_account(http)
    old = client.session
    assert old is not None
    new = await client.refresh()
    assert new.refresh_token != old.refresh_token
    assert new.user_id == old.user_id
    replay = await http.post("/v1/sessions/refresh", json={"refreshToken": old.refresh_token})
    assert replay.status_code == 401
    assert replay.json() == {"error": "Unauthorized"}
    # No reuse detection: the rotated chain stays valid after the replay.
    await client.refresh()


async def test_refresh_preserves_the_device_scope(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    refreshed = await device.client.refresh()
    assert refreshed.device_id == device.id
    assert jwt_claims(refreshed.token)["device_id"] == str(device.id)


@pytest.mark.parametrize("token", ["", "unknown", "x" * 43])
async def test_unknown_refresh_tokens_are_401(http: httpx.AsyncClient, token: str) -> None:
    response = await http.post("/v1/sessions/refresh", json={"refreshToken": token})
    assert response.status_code == 401


@pytest.mark.settings(auth_refresh_token_ttl_days=0)
async def test_expired_refresh_token_is_refused_and_consumed(
    http: httpx.AsyncClient, services: object
) -> None:
    from relay.registry import Services

    assert isinstance(services, Services)
    client = await new_account(http)
    assert client.session is not None
    with pytest.raises(ApiError) as caught:
        await client.refresh()
    assert caught.value.status == 401
    assert await services.sessions.delete_expired_refresh_tokens(batch_size=10) == 0


async def test_logout_revokes_the_refresh_token(http: httpx.AsyncClient) -> None:
    client = await new_account(http)
    assert client.session is not None
    token = client.session.refresh_token
    await client.logout()
    response = await http.post("/v1/sessions/refresh", json={"refreshToken": token})
    assert response.status_code == 401
    # The access token is stateless and keeps working until it expires.
    assert (await http.get("/v1/devices", headers=client.auth_headers)).status_code == 200


async def test_logout_cannot_revoke_another_users_token(http: httpx.AsyncClient) -> None:
    victim = await new_account(http)
    attacker = await new_account(http)
    assert victim.session is not None
    response = await http.request(
        "DELETE",
        "/v1/sessions",
        headers=attacker.auth_headers,
        json={"refreshToken": victim.session.refresh_token},
    )
    assert response.status_code == 200
    assert response.content == b""
    await victim.refresh()


async def test_logout_of_unknown_token_is_still_200(http: httpx.AsyncClient) -> None:
    client = await new_account(http)
    response = await http.request(
        "DELETE", "/v1/sessions", headers=client.auth_headers, json={"refreshToken": "nope"}
    )
    assert response.status_code == 200


async def test_deleting_a_device_revokes_its_refresh_tokens(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    assert device.client.session is not None
    token = device.client.session.refresh_token
    await device.client.delete_device(device.id)
    response = await http.post("/v1/sessions/refresh", json={"refreshToken": token})
    assert response.status_code == 401


async def test_sessions_survive_only_as_long_as_the_access_token(http: httpx.AsyncClient) -> None:
    client = await new_account(http)
    assert client.session is not None
    claims = jwt_claims(client.session.token)
    assert claims["exp"] == client.session.expires_at
    other = ObscuraClient(http)
    with pytest.raises(RuntimeError):
        await other.refresh()


async def test_login_upgrades_hashes_made_with_old_parameters(
    http: httpx.AsyncClient, db: Database
) -> None:
    username = unique_username()
    await new_account(http, username)
    stronger = PasswordHashing(memory_kib=128, iterations=2)
    assert stronger.needs_rehash(await _stored_hash(db, username))
    service = SessionService(
        db,
        SessionIssuer(JwtCodec(b"k" * 32), token_ttl_secs=60, refresh_ttl_days=1),
        stronger,
        hash_limiter=trio.CapacityLimiter(1),
    )
    await service.login(username, PASSWORD, None)
    upgraded = await _stored_hash(db, username)
    assert not stronger.needs_rehash(upgraded)
    assert stronger.verify(upgraded, PASSWORD)


async def _stored_hash(db: Database, username: str) -> str:
    user = await db.read(lambda conn: users.by_username(conn, username.lower()))
    assert user is not None
    return user.password_hash
