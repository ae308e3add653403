"""PUT /v1/push-tokens (obscura-contract §2.14)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from storage.db import Database
from storage.schema import push_tokens
from tests.factories import Device, new_device


async def _stored(db: Database, device: Device) -> str | None:
    statement = select(push_tokens.c.token).where(push_tokens.c.device_id == device.id)
    return await db.read(lambda conn: conn.execute(statement).scalar_one_or_none())


async def test_token_is_stored_untrimmed_and_replaced(
    http: httpx.AsyncClient, db: Database
) -> None:
    device = await new_device(http)
    response = await http.put("/v1/push-tokens", headers=device.headers, json={"token": " abc \n"})
    assert response.status_code == 200
    assert response.content == b""
    assert await _stored(db, device) == " abc \n"
    await device.client.put_push_token("second")
    assert await _stored(db, device) == "second"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "Token cannot be empty"),
        ("  \t\n", "Token cannot be empty"),
        ("a" * 4097, "Token is too long (max 4096 characters)"),
        ("€" * 1366, "Token is too long (max 4096 characters)"),
    ],
)
async def test_invalid_tokens(
    http: httpx.AsyncClient, db: Database, token: str, message: str
) -> None:
    device = await new_device(http)
    response = await http.put("/v1/push-tokens", headers=device.headers, json={"token": token})
    assert response.status_code == 400
    assert response.json() == {"error": message}
    assert await _stored(db, device) is None


async def test_length_is_measured_after_trimming(http: httpx.AsyncClient, db: Database) -> None:
    device = await new_device(http)
    token = "  " + "a" * 4096 + "  "
    response = await http.put("/v1/push-tokens", headers=device.headers, json={"token": token})
    assert response.status_code == 200
    assert await _stored(db, device) == token


async def test_tokens_are_per_device(http: httpx.AsyncClient, db: Database) -> None:
    first = await new_device(http)
    second = await new_device(http, account=first.client)
    await first.client.put_push_token("one")
    await second.client.put_push_token("two")
    assert await _stored(db, first) == "one"
    assert await _stored(db, second) == "two"
