"""Builders for accounts and devices, shared by the API tests."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from relay.client import DeviceKeys, ObscuraClient

PASSWORD = "correct horse battery staple"


def jwt_claims(token: str) -> dict[str, Any]:
    """The (unverified) claims of an access token."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def unique_username(prefix: str = "user") -> str:
    """A username no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


@dataclass
class Device:
    """A registered account acting as one of its devices."""

    client: ObscuraClient
    keys: DeviceKeys
    username: str | None

    @property
    def id(self) -> uuid.UUID:
        """The device id."""
        assert self.client.session is not None
        assert self.client.session.device_id is not None
        return self.client.session.device_id

    @property
    def user_id(self) -> uuid.UUID:
        """The owning user's id."""
        assert self.client.session is not None
        return self.client.session.user_id

    @property
    def headers(self) -> dict[str, str]:
        """Authorization headers of this device."""
        return self.client.auth_headers


async def new_account(http: httpx.AsyncClient, username: str | None = None) -> ObscuraClient:
    """A freshly registered account, logged in user-scoped."""
    client = ObscuraClient(http)
    await client.register(username or unique_username(), PASSWORD)
    return client


async def new_device(
    http: httpx.AsyncClient,
    *,
    one_time_pre_keys: int = 5,
    account: ObscuraClient | None = None,
    name: str | None = None,
) -> Device:
    """A device (on a new account unless ``account`` is given) with its keys."""
    username = None
    if account is None:
        username = unique_username()
        account = await new_account(http, username)
    client = ObscuraClient(http, account.session)
    keys = DeviceKeys.generate(one_time_pre_keys=one_time_pre_keys)
    await client.create_device(keys, name=name)
    return Device(client, keys, username)
