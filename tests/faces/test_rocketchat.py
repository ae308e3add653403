"""The Rocket.Chat face with the official ``rocketchat-API`` client and raw HTTP:
``login``, ``push.token`` (validation, the upsert and dedupe rules of ``raix:push-update``),
``DELETE push.token``, ``push.info``; tokens stored hashed."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
import trio
from rocketchat_API.APIExceptions.RocketExceptions import RocketAuthenticationException
from rocketchat_API.rocketchat import RocketChat

from relay.process.server import Listening
from relay.registry import Services
from storage.db import Database
from storage.repos import push_registrations
from storage.repos.push_registrations import ROCKETCHAT
from tests.faces.conftest import APP
from tests.factories import PASSWORD, new_account, unique_username
from tests.pushkit import BUNDLE_ID, Keys


async def account(http: httpx.AsyncClient) -> str:
    username = unique_username()
    await new_account(http, username)
    return username


async def rocket(relay: Listening, username: str, password: str = PASSWORD) -> RocketChat:
    """The official client, logged in (it posts to /api/v1/login when constructed)."""
    return await trio.to_thread.run_sync(
        lambda: RocketChat(username, password, server_url=relay.api_url.rstrip("/"))
    )


async def post_token(client: RocketChat, **body: Any) -> dict[str, Any]:
    result: dict[str, Any] = await trio.to_thread.run_sync(
        lambda: client.call_api_post("push.token", **body)
    )
    return result


async def login(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await http.post("/api/v1/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    return {"X-Auth-Token": data["authToken"], "X-User-Id": data["userId"]}


async def delete_token(
    http: httpx.AsyncClient, headers: dict[str, str], content: str | bytes
) -> httpx.Response:
    """``DELETE /api/v1/push.token`` with a JSON body (the client library sends none)."""
    return await http.request(
        "DELETE",
        "/api/v1/push.token",
        content=content,
        headers={**headers, "Content-Type": "application/json"},
    )


async def documents(db: Database, username: str) -> list[push_registrations.Registration]:
    return await db.read(lambda conn: push_registrations.by_user(conn, ROCKETCHAT, username))


async def test_official_client_logs_in_and_registers_a_token(
    relay: Listening, http: httpx.AsyncClient, app: str, db: Database
) -> None:
    username = await account(http)
    client = await rocket(relay, username)
    result = await post_token(client, type="gcm", value="TOKEN", appName=APP)
    assert result["success"] is True
    document = result["result"]
    assert document["token"] == {"gcm": "TOKEN"}
    assert (document["appName"], document["enabled"]) == (APP, True)
    assert document["userId"] == client.headers["X-User-Id"]
    assert len(document["_id"]) == 17
    assert "authToken" not in document
    (row,) = await documents(db, username)
    assert (row.platform, row.token, row.face_ref) == ("fcm", "TOKEN", document["_id"])
    info = await trio.to_thread.run_sync(lambda: client.call_api_get("push.info"))
    assert info == {"pushGatewayEnabled": False, "defaultPushGateway": False, "success": True}


async def test_official_client_wrong_password_is_401(
    relay: Listening, http: httpx.AsyncClient
) -> None:
    username = await account(http)
    with pytest.raises(RocketAuthenticationException):
        await rocket(relay, username, "not the password")


async def test_login_accepts_user_or_username_and_refuses_bad_credentials(
    http: httpx.AsyncClient,
) -> None:
    username = await account(http)
    response = await http.post("/api/v1/login", json={"user": username, "password": PASSWORD})
    assert response.json()["status"] == "success"
    for body in ({"username": username, "password": "nope nope nope"}, {"username": username}, {}):
        response = await http.post("/api/v1/login", json=body)
        assert response.status_code == 401
        assert response.json() == {
            "status": "error",
            "error": "Unauthorized",
            "message": "Unauthorized",
        }


async def test_push_token_upsert_and_dedupe_rules(
    http: httpx.AsyncClient, app: str, db: Database
) -> None:
    alice, bob = await account(http), await account(http)
    alice_headers, bob_headers = await login(http, alice), await login(http, bob)

    async def put(headers: dict[str, str], **body: Any) -> dict[str, Any]:
        response = await http.post("/api/v1/push.token", json=body, headers=headers)
        assert response.status_code == 200, response.text
        return dict(response.json()["result"])

    first = await put(alice_headers, type="apn", value="a1" * 32, appName=APP)
    # With an id: found by id and updated in place.
    again = await put(alice_headers, id=first["_id"], type="apn", value="b2" * 32, appName=APP)
    assert again["_id"] == first["_id"]
    assert again["token"] == {"apn": "b2" * 32}
    # Without an id: the user's existing document is taken over (the reference's quirk).
    second = await put(alice_headers, type="gcm", value="phone-2", appName=APP)
    assert second["_id"] == first["_id"]
    assert second["token"] == {"gcm": "phone-2"}
    assert len(await documents(db, alice)) == 1
    # A device belongs to the last user who registered it.
    await put(bob_headers, type="gcm", value="phone-2", appName=APP)
    assert await documents(db, alice) == []
    (row,) = await documents(db, bob)
    assert row.token == "phone-2"
    # An explicit new id makes a document of its own.
    await put(bob_headers, id="my-second-phone", type="gcm", value="phone-3", appName=APP)
    assert sorted(item.token for item in await documents(db, bob)) == ["phone-2", "phone-3"]


async def test_push_token_accepts_a_push_key(
    http: httpx.AsyncClient, app: str, db: Database
) -> None:
    username = await account(http)
    key = base64.b64encode(b"\x31" + bytes(32)).decode()
    response = await http.post(
        "/api/v1/push.token",
        json={"type": "gcm", "value": "keyed", "appName": APP, "pushKey": key},
        headers=await login(http, username),
    )
    assert response.status_code == 200
    (row,) = await documents(db, username)
    assert row.push_key is not None
    assert bytes(32) not in row.push_key


@pytest.mark.parametrize("app_name", ["chat.rocket.android", "chat.rocket.reactnative"])
async def test_the_stock_apps_register_reregister_and_delete(
    relay: Listening,
    http: httpx.AsyncClient,
    app: str,
    db: Database,
    services: Services,
    app_name: str,
) -> None:
    # Their appName names no push app here: the registration goes to the default app.
    username = await account(http)
    client = await rocket(relay, username)
    first = await post_token(client, type="gcm", value="STOCK", appName=app_name)
    assert first["success"] is True
    assert first["result"]["appName"] == app_name
    again = await post_token(client, type="gcm", value="STOCK", appName=app_name)
    assert again["result"]["_id"] == first["result"]["_id"]
    (row,) = await documents(db, username)
    assert row.app_id == await services.push_apps.app_id("rocketchat")
    headers = {
        "X-Auth-Token": client.headers["X-Auth-Token"],
        "X-User-Id": client.headers["X-User-Id"],
    }
    response = await delete_token(http, headers, json.dumps({"token": "STOCK"}))
    assert response.json() == {"success": True}
    assert await documents(db, username) == []
    assert (await delete_token(http, headers, json.dumps({"token": "STOCK"}))).status_code == 404


async def test_an_app_name_that_is_a_bundle_id_or_package_name_finds_its_app(
    http: httpx.AsyncClient, app: str, db: Database, services: Services, keys: Keys
) -> None:
    await services.push_apps.set_fcm(
        app, keys.service_account_json(), package_name="com.example.chat"
    )
    username = await account(http)
    headers = await login(http, username)
    for name, token in ((BUNDLE_ID, "ios-token"), ("com.example.chat", "android-token")):
        body = {"type": "gcm", "value": token, "appName": name}
        response = await http.post("/api/v1/push.token", json=body, headers=headers)
        assert response.status_code == 200, response.text
    app_id = await services.push_apps.app_id(app)
    assert [row.app_id for row in await documents(db, username)] == [app_id]  # one device
    assert await services.push_apps.app_id("rocketchat") is None


async def test_an_id_is_looked_up_among_the_callers_own_documents_only(
    http: httpx.AsyncClient, app: str, db: Database
) -> None:
    alice, bob = await account(http), await account(http)
    alice_headers, bob_headers = await login(http, alice), await login(http, bob)
    body = {"type": "gcm", "value": "bobs-token", "appName": APP, "id": "SharedDocumentId"}
    assert (await http.post("/api/v1/push.token", json=body, headers=bob_headers)).is_success
    body = {"type": "gcm", "value": "alices-token", "appName": APP, "id": "SharedDocumentId"}
    assert (await http.post("/api/v1/push.token", json=body, headers=alice_headers)).is_success
    (bobs,) = await documents(db, bob)
    assert bobs.token == "bobs-token"
    (alices,) = await documents(db, alice)
    assert alices.token == "alices-token"
    response = await delete_token(http, bob_headers, json.dumps({"token": "bobs-token"}))
    assert response.json() == {"success": True}


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        ({"type": "gcm", "value": "t", "appName": APP, "id": 5}, "error-id-param-not-valid"),
        ({"value": "t", "appName": APP}, "error-type-param-not-valid"),
        ({"type": "mpns", "value": "t", "appName": APP}, "error-type-param-not-valid"),
        ({"type": "gcm", "value": "", "appName": APP}, "error-token-param-not-valid"),
        ({"type": "gcm", "appName": APP}, "error-token-param-not-valid"),
        ({"type": "gcm", "value": "t"}, "error-appName-param-not-valid"),
        (
            {"type": "gcm", "value": "t", "appName": APP, "pushKey": "abc"},
            "error-pushKey-param-not-valid",
        ),
    ],
)
async def test_push_token_validation_errors(
    http: httpx.AsyncClient, app: str, db: Database, body: dict[str, Any], error_type: str
) -> None:
    username = await account(http)
    response = await http.post("/api/v1/push.token", json=body, headers=await login(http, username))
    assert response.status_code == 400
    answer = response.json()
    assert (answer["success"], answer["errorType"]) == (False, error_type)
    assert await documents(db, username) == []


async def test_a_refused_registration_creates_no_app(
    http: httpx.AsyncClient, services: Services
) -> None:
    # An unknown appName falls back to the default app, created when needed: but only
    # once the request is valid.
    username = await account(http)
    body = {"type": "gcm", "value": "t", "appName": "com.example.unknown", "pushKey": "abc"}
    response = await http.post("/api/v1/push.token", json=body, headers=await login(http, username))
    assert response.status_code == 400
    assert await services.push_apps.app_id("rocketchat") is None


async def test_the_documented_type_error_message(http: httpx.AsyncClient, app: str) -> None:
    username = await account(http)
    response = await http.post(
        "/api/v1/push.token",
        json={"value": "t", "appName": APP},
        headers=await login(http, username),
    )
    assert response.json() == {
        "success": False,
        "error": (
            'The required "type" body param is missing or invalid. [error-type-param-not-valid]'
        ),
        "errorType": "error-type-param-not-valid",
    }


async def test_delete_removes_only_the_callers_documents(
    http: httpx.AsyncClient, app: str, db: Database
) -> None:
    alice, bob = await account(http), await account(http)
    alice_headers, bob_headers = await login(http, alice), await login(http, bob)
    await http.post(
        "/api/v1/push.token",
        json={"type": "gcm", "value": "mine", "appName": APP},
        headers=alice_headers,
    )
    response = await delete_token(http, bob_headers, json.dumps({"token": "mine"}))
    assert response.status_code == 404
    assert response.json()["success"] is False
    assert len(await documents(db, alice)) == 1
    response = await delete_token(http, alice_headers, json.dumps({"token": "mine"}))
    assert response.json() == {"success": True}
    assert await documents(db, alice) == []
    response = await delete_token(http, alice_headers, b"{}")
    assert response.status_code == 400
    assert response.json()["errorType"] == "error-token-param-not-valid"


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Auth-Token": "nope", "X-User-Id": "someone"}, {"X-Auth-Token": "nope"}],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/push.token"),
        ("DELETE", "/api/v1/push.token"),
        ("GET", "/api/v1/push.info"),
    ],
)
async def test_authentication_is_required(
    http: httpx.AsyncClient, headers: dict[str, str], method: str, path: str
) -> None:
    response = await http.request(method, path, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"status": "error", "message": "You must be logged in to do this."}


async def test_an_auth_token_only_works_with_its_own_user_id(http: httpx.AsyncClient) -> None:
    alice, bob = await account(http), await account(http)
    alice_headers, bob_headers = await login(http, alice), await login(http, bob)
    mixed = {"X-Auth-Token": alice_headers["X-Auth-Token"], "X-User-Id": bob_headers["X-User-Id"]}
    assert (await http.get("/api/v1/push.info", headers=mixed)).status_code == 401
    assert (await http.get("/api/v1/push.info", headers=alice_headers)).status_code == 200
