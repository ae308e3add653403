"""Helpers for the Zulip face tests: sealed registrations and the official client."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import nacl.public
import trio
import zulip

from tests.faces.conftest import BOUNCER_PUBLIC

PUSH_KEY = bytes(range(1, 33))
PUSH_KEY_TEXT = base64.b64encode(b"\x31" + PUSH_KEY).decode()
FCM_TOKEN = "zulip-fcm-token"
IOS_APP_ID = "com.example.relay"


def sealed_registration(
    token: str = FCM_TOKEN,
    token_kind: str = "fcm",
    *,
    ios_app_id: str | None = None,
    timestamp: int | None = None,
    public_key: str = BOUNCER_PUBLIC,
    raw: bytes | None = None,
) -> str:
    """``encrypted_push_registration``: a sealed box to the bouncer key."""
    content = raw
    if content is None:
        content = json.dumps(
            {
                "token": token,
                "token_kind": token_kind,
                "ios_app_id": ios_app_id,
                "timestamp": int(time.time()) if timestamp is None else timestamp,
            }
        ).encode()
    box = nacl.public.SealedBox(nacl.public.PublicKey(base64.b64decode(public_key)))
    return base64.b64encode(box.encrypt(content)).decode()


def register_request(**overrides: Any) -> dict[str, Any]:
    """The parameters of ``mobile_push/register`` (the seed document's example shape)."""
    request: dict[str, Any] = {
        "token_kind": "fcm",
        "push_account_id": 2408,
        "push_key": PUSH_KEY_TEXT,
        "bouncer_public_key": BOUNCER_PUBLIC,
        "encrypted_push_registration": sealed_registration(),
    }
    request.update(overrides)
    return request


async def official_client(site: str, email: str, api_key: str) -> zulip.Client:
    """The ``zulip`` PyPI client (it fetches /server_settings when constructed)."""
    return await trio.to_thread.run_sync(
        lambda: zulip.Client(email=email, api_key=api_key, site=site, retry_on_errors=False)
    )


async def call_endpoint(
    client: zulip.Client, url: str, request: dict[str, Any] | None = None, method: str = "POST"
) -> dict[str, Any]:
    """``client.call_endpoint`` off the trio thread (the client is synchronous)."""
    result: dict[str, Any] = await trio.to_thread.run_sync(
        lambda: client.call_endpoint(url=url, method=method, request=request)
    )
    return result
