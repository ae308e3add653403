"""The Zulip face with the official ``zulip`` bindings and raw HTTP: server settings,
``fetch_api_key`` (errors, per-username rate limit), HTTP Basic authentication,
``mobile_push/register`` at feature level 406 (every error code, idempotency) and an
end-to-end encrypted test notification the test decrypts with the push key."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import nacl.secret
import pytest

from relay.process.server import Listening
from relay.registry import Services
from storage.db import Database
from storage.repos import push_registrations
from storage.repos.push_registrations import ZULIP
from tests.faces.zulipkit import (
    FCM_TOKEN,
    IOS_APP_ID,
    PUSH_KEY,
    PUSH_KEY_TEXT,
    call_endpoint,
    official_client,
    register_request,
    sealed_registration,
)
from tests.factories import PASSWORD, new_account, unique_username
from tests.pushkit import APNS_TOKEN, Emulators


async def account(http: httpx.AsyncClient) -> str:
    username = unique_username()
    await new_account(http, username)
    return username


async def api_key_of(http: httpx.AsyncClient, username: str) -> str:
    response = await http.post(
        "/api/v1/fetch_api_key", data={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["api_key"])


def basic(username: str, api_key: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{api_key}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def zulip_error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert body["result"] == "error", body
    return response.status_code, body["code"], body["msg"]


async def registrations(db: Database, username: str) -> list[push_registrations.Registration]:
    return await db.read(lambda conn: push_registrations.by_user(conn, ZULIP, username))


async def test_official_client_logs_in_registers_and_decrypts_a_test_notification(
    relay: Listening,
    http: httpx.AsyncClient,
    app: str,
    emulators: Emulators,
    db: Database,
) -> None:
    username = await account(http)
    anonymous = await official_client(relay.api_url, username, "x" * 32)
    assert anonymous.feature_level == 406
    fetched = await call_endpoint(
        anonymous, "fetch_api_key", {"username": username, "password": PASSWORD}
    )
    assert fetched["result"] == "success"
    assert fetched["email"] == username
    assert isinstance(fetched["user_id"], int)
    client = await official_client(relay.api_url, username, fetched["api_key"])
    # The seed document's own call, leading slash included.
    result = await call_endpoint(client, "/mobile_push/register", register_request())
    assert result == {"result": "success", "msg": ""}
    (row,) = await registrations(db, username)
    assert (row.face_ref, row.platform, row.token, row.active) == ("2408", "fcm", FCM_TOKEN, True)

    result = await call_endpoint(client, "mobile_push/e2ee/test_notification", {})
    assert result["result"] == "success"
    (sent,) = emulators.fcm.received
    assert sent.token == FCM_TOKEN
    assert set(sent.payload["data"]) == {"push_account_id", "encrypted_data"}
    assert sent.payload["data"]["push_account_id"] == "2408"
    assert sent.payload["android"]["priority"] == "HIGH"
    assert "notification" not in sent.payload
    sealed = base64.b64decode(sent.payload["data"]["encrypted_data"])
    content = json.loads(nacl.secret.SecretBox(PUSH_KEY).decrypt(sealed))
    assert content["type"] == "test"
    assert content["user_id"] == fetched["user_id"]
    assert content["realm_url"] == relay.api_url.rstrip("/")
    assert abs(content["time"] - time.time()) < 60


async def test_apns_registration_gets_the_placeholder_alert(
    relay: Listening, http: httpx.AsyncClient, app: str, emulators: Emulators
) -> None:
    username = await account(http)
    key = await api_key_of(http, username)
    request = register_request(
        token_kind="apns",
        encrypted_push_registration=sealed_registration(APNS_TOKEN, "apns", ios_app_id=IOS_APP_ID),
    )
    response = await http.post(
        "/api/v1/mobile_push/register", data=request, headers=basic(username, key)
    )
    assert response.status_code == 200, response.text
    response = await http.post(
        "/api/v1/mobile_push/e2ee/test_notification",
        data={"push_account_id": "2408"},
        headers=basic(username, key),
    )
    assert response.status_code == 200, response.text
    (sent,) = emulators.apns.received
    assert sent.payload["aps"] == {"alert": {"title": "New notification"}, "mutable-content": 1}
    assert sent.headers["apns-priority"] == "10"
    content = json.loads(
        nacl.secret.SecretBox(PUSH_KEY).decrypt(base64.b64decode(sent.payload["encrypted_data"]))
    )
    assert content["type"] == "test"


async def test_server_settings_are_public(http: httpx.AsyncClient, app: str) -> None:
    body = (await http.get("/api/v1/server_settings")).json()
    assert body["result"] == "success"
    assert (body["zulip_feature_level"], body["push_notifications_enabled"]) == (406, True)
    assert body["authentication_methods"]["password"] is True


async def test_registration_is_idempotent(http: httpx.AsyncClient, app: str, db: Database) -> None:
    username = await account(http)
    headers = basic(username, await api_key_of(http, username))
    for _ in range(2):
        response = await http.post(
            "/api/v1/mobile_push/register", data=register_request(), headers=headers
        )
        assert response.json() == {"result": "success", "msg": ""}
    assert len(await registrations(db, username)) == 1
    # A second account id on the same phone is a registration of its own.
    response = await http.post(
        "/api/v1/mobile_push/register",
        data=register_request(push_account_id=77),
        headers=headers,
    )
    assert response.status_code == 200
    assert sorted(row.face_ref for row in await registrations(db, username)) == ["2408", "77"]


async def test_unknown_parameters_are_reported(http: httpx.AsyncClient, app: str) -> None:
    username = await account(http)
    response = await http.post(
        "/api/v1/mobile_push/register",
        data={**register_request(), "colour": "blue"},
        headers=basic(username, await api_key_of(http, username)),
    )
    assert response.json()["ignored_parameters_unsupported"] == ["colour"]


EXPIRED = int(time.time()) - 86401


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"token_kind": "gcm"}, (400, "BAD_REQUEST", "Invalid token_kind")),
        ({"push_account_id": "abc"}, (400, "BAD_REQUEST", "push_account_id is not an integer")),
        (
            {"push_account_id": str(1 << 63)},
            (400, "BAD_REQUEST", "push_account_id is not an integer"),
        ),
        (
            {"push_key": "MTaUDJDMWypQ1WufZ1NRTHSSvgYtXh1qVNSjN3aBiEF"},
            (400, "BAD_REQUEST", "Invalid `push_key`"),
        ),
        (
            {"push_key": base64.b64encode(b"\x32" + PUSH_KEY).decode()},
            (400, "BAD_REQUEST", "Invalid `push_key`"),
        ),
        (
            {"push_key": base64.b64encode(b"\x31" + PUSH_KEY[:31]).decode()},
            (400, "BAD_REQUEST", "Invalid `push_key`"),
        ),
        ({"push_key": PUSH_KEY_TEXT + "=="}, (400, "BAD_REQUEST", "Invalid `push_key`")),
        (
            {"bouncer_public_key": "bouncer-public-key"},
            (400, "INVALID_BOUNCER_PUBLIC_KEY", "Invalid bouncer_public_key"),
        ),
        (
            {"encrypted_push_registration": "encrypted-push-registration-data"},
            (400, "BAD_REQUEST", "Invalid encrypted_push_registration"),
        ),
        (
            {"encrypted_push_registration": sealed_registration(raw=b"not json")},
            (400, "BAD_REQUEST", "Invalid encrypted_push_registration"),
        ),
        (
            {"encrypted_push_registration": sealed_registration(token="")},
            (400, "BAD_REQUEST", "Invalid encrypted_push_registration"),
        ),
        (
            {"encrypted_push_registration": sealed_registration(ios_app_id=IOS_APP_ID)},
            (400, "BAD_REQUEST", "Invalid encrypted_push_registration"),
        ),
        (
            {
                "token_kind": "apns",
                "encrypted_push_registration": sealed_registration(APNS_TOKEN, "apns"),
            },
            (400, "BAD_REQUEST", "Invalid encrypted_push_registration"),
        ),
        (
            {
                "token_kind": "apns",
                "encrypted_push_registration": sealed_registration(
                    "not-hex", "apns", ios_app_id=IOS_APP_ID
                ),
            },
            (400, "BAD_REQUEST", "Invalid encrypted_push_registration"),
        ),
        (
            {"encrypted_push_registration": sealed_registration(token="x" * 4097)},
            (400, "BAD_REQUEST", "Invalid encrypted_push_registration"),
        ),
        (
            {"encrypted_push_registration": sealed_registration(timestamp=EXPIRED)},
            (400, "REQUEST_EXPIRED", "Request expired"),
        ),
        (
            {"token_kind": "apns"},  # the sealed registration says fcm
            (400, "BAD_REQUEST", "Invalid encrypted_push_registration"),
        ),
    ],
)
async def test_register_rejects_bad_registrations(
    http: httpx.AsyncClient,
    app: str,
    db: Database,
    change: dict[str, Any],
    expected: tuple[int, str, str],
) -> None:
    username = await account(http)
    response = await http.post(
        "/api/v1/mobile_push/register",
        data=register_request(**change),
        headers=basic(username, await api_key_of(http, username)),
    )
    assert zulip_error(response) == expected
    assert await registrations(db, username) == []


async def test_a_future_timestamp_is_accepted(http: httpx.AsyncClient, app: str) -> None:
    # Zulip's freshness check is one-sided.
    username = await account(http)
    request = register_request(
        encrypted_push_registration=sealed_registration(timestamp=int(time.time()) + 3600)
    )
    response = await http.post(
        "/api/v1/mobile_push/register",
        data=request,
        headers=basic(username, await api_key_of(http, username)),
    )
    assert response.status_code == 200


@pytest.mark.parametrize("missing", ["token_kind", "push_key", "encrypted_push_registration"])
async def test_register_names_a_missing_parameter(
    http: httpx.AsyncClient, app: str, missing: str
) -> None:
    username = await account(http)
    request = register_request()
    del request[missing]
    response = await http.post(
        "/api/v1/mobile_push/register",
        data=request,
        headers=basic(username, await api_key_of(http, username)),
    )
    assert zulip_error(response) == (
        400,
        "REQUEST_VARIABLE_MISSING",
        f"Missing '{missing}' argument",
    )
    assert response.json()["var_name"] == missing


@pytest.mark.settings(push_registration_encryption_keys=None)
async def test_register_without_a_bouncer_key_is_not_configured(
    http: httpx.AsyncClient, app: str
) -> None:
    username = await account(http)
    assert (await http.get("/api/v1/server_settings")).json()["push_notifications_enabled"] is False
    response = await http.post(
        "/api/v1/mobile_push/register",
        data=register_request(),
        headers=basic(username, await api_key_of(http, username)),
    )
    assert zulip_error(response) == (
        400,
        "PUSH_SERVICE_NOT_CONFIGURED",
        "Server is not configured to use push notification service.",
    )


async def test_keys_added_with_the_cli_service_are_used(
    http: httpx.AsyncClient, app: str, services: Services, db: Database
) -> None:
    public = await services.bouncer_keys.add()
    username = await account(http)
    request = register_request(
        bouncer_public_key=public,
        encrypted_push_registration=sealed_registration(public_key=public),
    )
    response = await http.post(
        "/api/v1/mobile_push/register",
        data=request,
        headers=basic(username, await api_key_of(http, username)),
    )
    assert response.status_code == 200, response.text
    assert len(await registrations(db, username)) == 1


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, (401, "UNAUTHORIZED", "Not logged in: API authentication or user session required")),
        ({"Authorization": "Basic !!!"}, (401, "INVALID_API_KEY", "Malformed API key")),
    ],
)
async def test_authentication_is_required(
    http: httpx.AsyncClient, headers: dict[str, str], expected: tuple[int, str, str]
) -> None:
    response = await http.post(
        "/api/v1/mobile_push/register", data=register_request(), headers=headers
    )
    assert zulip_error(response) == expected
    assert response.headers["www-authenticate"] == 'Basic realm="zulip"'


async def test_wrong_and_malformed_api_keys(http: httpx.AsyncClient, app: str) -> None:
    username = await account(http)
    other = await account(http)
    key = await api_key_of(http, username)
    for login, api_key, msg in [
        (username, "A" * 32, "Invalid API key"),
        (other, key, "Invalid API key"),
        (username, "short", "Malformed API key"),
    ]:
        response = await http.post(
            "/api/v1/mobile_push/e2ee/test_notification", headers=basic(login, api_key)
        )
        assert zulip_error(response) == (401, "INVALID_API_KEY", msg)


async def test_without_provider_credentials_push_is_reported_not_configured(
    relay: Listening,
    http: httpx.AsyncClient,
    emulators: Emulators,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # No `app` fixture: the face's push app is created by the registration, bare.
    assert (await http.get("/api/v1/server_settings")).json()["push_notifications_enabled"] is False
    username = await account(http)
    headers = basic(username, await api_key_of(http, username))
    response = await http.post(
        "/api/v1/mobile_push/register", data=register_request(), headers=headers
    )
    assert response.json()["result"] == "success"
    response = await http.post("/api/v1/mobile_push/e2ee/test_notification", headers=headers)
    assert zulip_error(response) == (
        400,
        "PUSH_SERVICE_NOT_CONFIGURED",
        "Server is not configured to use push notification service.",
    )
    assert emulators.fcm.received == []
    assert "has no fcm credentials" in caplog.text


async def test_test_notification_needs_a_registered_device(
    http: httpx.AsyncClient, app: str
) -> None:
    username = await account(http)
    response = await http.post(
        "/api/v1/mobile_push/e2ee/test_notification",
        headers=basic(username, await api_key_of(http, username)),
    )
    assert zulip_error(response) == (
        400,
        "NO_ACTIVE_PUSH_DEVICE",
        "No active registered push device",
    )


async def test_fetch_api_key_failures_and_the_rate_limit(http: httpx.AsyncClient) -> None:
    username = await account(http)
    for _ in range(5):
        response = await http.post(
            "/api/v1/fetch_api_key", data={"username": username, "password": "wrong password!"}
        )
        assert zulip_error(response) == (
            401,
            "AUTHENTICATION_FAILED",
            "Your username or password is incorrect",
        )
    response = await http.post(
        "/api/v1/fetch_api_key", data={"username": username, "password": PASSWORD}
    )
    assert zulip_error(response) == (429, "RATE_LIMIT_HIT", "API usage exceeded rate limit")
    assert 1700 <= int(response.headers["retry-after"]) <= 1800
    assert response.json()["retry-after"] == int(response.headers["retry-after"])
    # Another username is not affected.
    other = await account(http)
    assert (
        await http.post("/api/v1/fetch_api_key", data={"username": other, "password": PASSWORD})
    ).status_code == 200


async def test_fetch_api_key_requires_both_fields(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/v1/fetch_api_key", data={"username": "someone"})
    assert zulip_error(response) == (400, "REQUEST_VARIABLE_MISSING", "Missing 'password' argument")


async def test_api_keys_are_stored_hashed(http: httpx.AsyncClient, db: Database) -> None:
    from storage.schema import face_tokens

    username = await account(http)
    key = await api_key_of(http, username)
    stored = await db.read(lambda conn: [row[0] for row in conn.execute(face_tokens.select())])
    assert stored
    assert key not in json.dumps([str(item) for item in stored])
