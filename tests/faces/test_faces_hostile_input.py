"""Hostile input against every route of the three faces: never a 500, always the face's
own error convention, and nothing stored."""

from __future__ import annotations

import base64
import json
from importlib import resources
from typing import Any

import httpx
import pytest
import yaml

from relay.api.documents import FACE_DOCUMENTS
from relay.registry import Services
from storage.db import Database
from storage.schema import push_campaigns, push_inbox, push_registrations
from tests.factories import PASSWORD, new_account, unique_username

pytestmark = pytest.mark.usefixtures("relay")

BODIES: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b"\xff\xfe not utf-8",
    b'{"requestObject": null}',
    b'{"requestObject": []}',
    b'{"requestObject": "text"}',
    json.dumps(
        {
            "requestObject": {
                "appId": {"nested": 1},
                "token": 5,
                "platform": ["apns"],
                "activationId": 7,
                "activationIds": [None, 3],
                "userId": [],
                "environment": 1,
                "message": {"userId": 5, "body": []},
                "batch": [None],
                "mode": 3,
                "type": None,
                "applications": "x",
                "privateKeyBase64": 12,
            }
        }
    ).encode(),
    json.dumps({"id": 1, "type": ["gcm"], "value": {"a": 1}, "appName": 3, "token": []}).encode(),
    b"token_kind=apns&push_account_id=1e400&push_key=%00&bouncer_public_key="
    b"&encrypted_push_registration=%ff",
]


def operations(face: str) -> list[tuple[str, str]]:
    text = resources.files("relay.api.openapi").joinpath(f"{face}.yaml").read_text("utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    found = []
    for path, item in document["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "delete"):
                found.append((method.upper(), path.replace("{id}", "1")))
    return found


ALL = [op for face in FACE_DOCUMENTS for op in operations(face)]


@pytest.fixture
async def credentials(http: httpx.AsyncClient, pa: httpx.AsyncClient) -> dict[str, str]:
    """Valid credentials of every face, so that the bodies reach the handlers."""
    username = unique_username()
    await new_account(http, username)
    zulip_key = (
        await http.post("/api/v1/fetch_api_key", data={"username": username, "password": PASSWORD})
    ).json()["api_key"]
    login = (
        await http.post("/api/v1/login", json={"username": username, "password": PASSWORD})
    ).json()
    return {
        "Authorization": pa.headers["Authorization"],
        "X-Auth-Token": login["data"]["authToken"],
        "X-User-Id": login["data"]["userId"],
        "zulip": "Basic " + base64.b64encode(f"{username}:{zulip_key}".encode()).decode(),
    }


@pytest.mark.parametrize(("method", "path"), ALL)
async def test_garbage_gets_a_clear_4xx_and_stores_nothing(
    http: httpx.AsyncClient,
    app: str,
    services: Services,
    db: Database,
    credentials: dict[str, str],
    method: str,
    path: str,
) -> None:
    headers = {"X-Auth-Token": credentials["X-Auth-Token"], "X-User-Id": credentials["X-User-Id"]}
    headers["Authorization"] = (
        credentials["zulip"] if "mobile_push" in path else credentials["Authorization"]
    )
    for body in BODIES:
        form = body.startswith(b"token_kind=")
        content_type = "application/x-www-form-urlencoded" if form else "application/json"
        response = await http.request(
            method, path, content=body, headers={**headers, "Content-Type": content_type}
        )
        assert response.status_code < 500, (method, path, body, response.text)
        if response.status_code >= 400 and response.content:
            answer = response.json()
            assert isinstance(answer, dict)
    counts = await db.read(
        lambda conn: [
            conn.execute(table.select()).fetchall()
            for table in (push_registrations, push_campaigns, push_inbox)
        ]
    )
    assert counts == [[], [], []]
