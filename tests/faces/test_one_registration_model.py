"""One registration model under three faces: a send from any face reaches every
registration of the user in the app, whichever face created it, end-to-end encrypted
where that registration has a push key; a dead token leaves every face's table."""

from __future__ import annotations

import base64
import json

import httpx
import nacl.secret

from providers.emulators.faults import Fault, FaultKind
from relay.process.server import Listening
from storage.db import Database
from storage.repos import push_registrations
from storage.repos.push_registrations import ROCKETCHAT, ZULIP
from tests.faces.conftest import APP, call
from tests.faces.test_powerauth_messages import BODY
from tests.faces.test_rocketchat import account, login
from tests.faces.test_zulip import api_key_of, basic
from tests.faces.zulipkit import FCM_TOKEN, PUSH_KEY, register_request
from tests.pushkit import Emulators
from tests.waiting import until


async def test_powerauth_send_reaches_a_zulip_phone_encrypted(
    relay: Listening, http: httpx.AsyncClient, pa: httpx.AsyncClient, app: str, emulators: Emulators
) -> None:
    username = await account(http)
    headers = basic(username, await api_key_of(http, username))
    response = await http.post(
        "/api/v1/mobile_push/register", data=register_request(), headers=headers
    )
    assert response.status_code == 200
    status, body = await call(
        pa, "/push/message/send", {"appId": APP, "message": {"userId": username, "body": BODY}}
    )
    assert status == 200
    assert body["responseObject"]["fcm"]["sent"] == 1
    (sent,) = emulators.fcm.received
    assert sent.token == FCM_TOKEN
    assert set(sent.payload["data"]) == {"push_account_id", "encrypted_data"}
    assert "Balance update" not in json.dumps(sent.payload)
    content = json.loads(
        nacl.secret.SecretBox(PUSH_KEY).decrypt(
            base64.b64decode(sent.payload["data"]["encrypted_data"])
        )
    )
    assert content["title"] == "Balance update"


async def test_a_rocketchat_token_receives_a_powerauth_push(
    relay: Listening, http: httpx.AsyncClient, pa: httpx.AsyncClient, app: str, emulators: Emulators
) -> None:
    username = await account(http)
    response = await http.post(
        "/api/v1/push.token",
        json={"type": "gcm", "value": "rocket-phone", "appName": APP},
        headers=await login(http, username),
    )
    assert response.status_code == 200
    status, _body = await call(
        pa,
        "/push/message/send",
        {"appId": APP, "mode": "ASYNCHRONOUS", "message": {"userId": username, "body": BODY}},
    )
    assert status == 200

    async def delivered() -> bool:
        return [item.token for item in emulators.fcm.received] == ["rocket-phone"]

    await until(delivered)
    (sent,) = emulators.fcm.received
    assert sent.payload["notification"]["title"] == "Balance update"


async def test_a_dead_token_leaves_every_faces_registrations(
    relay: Listening,
    http: httpx.AsyncClient,
    pa: httpx.AsyncClient,
    app: str,
    emulators: Emulators,
    db: Database,
) -> None:
    username = await account(http)
    await http.post(
        "/api/v1/push.token",
        json={"type": "gcm", "value": "dead-phone", "appName": APP},
        headers=await login(http, username),
    )
    zulip_headers = basic(username, await api_key_of(http, username))
    await http.post("/api/v1/mobile_push/register", data=register_request(), headers=zulip_headers)
    emulators.fcm.faults.per_token["dead-phone"] = Fault(FaultKind.UNREGISTERED)
    status, body = await call(
        pa, "/push/message/send", {"appId": APP, "message": {"userId": username, "body": BODY}}
    )
    assert status == 200
    assert body["responseObject"]["fcm"] == {"sent": 1, "pending": 0, "failed": 1, "total": 2}

    async def removed() -> bool:
        rows = await db.read(lambda conn: push_registrations.by_token(conn, "dead-phone"))
        return rows == []

    await until(removed)
    kept = await db.read(lambda conn: push_registrations.by_user(conn, ZULIP, username))
    assert [row.token for row in kept] == [FCM_TOKEN]
    gone = await db.read(lambda conn: push_registrations.by_user(conn, ROCKETCHAT, username))
    assert gone == []
