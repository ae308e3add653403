"""Fixtures of the compatible faces: the server pointed at the provider emulators, a
push app with credentials for all three, an integrator key, a bouncer key pair."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from relay.config import Settings
from relay.process.server import Listening
from relay.registry import Services
from relay.services.zulip.bouncer import generate_key_pair
from tests.pushkit import Emulators, Keys, configure_app, with_emulators

APP = "mobile-app"
BOUNCER_PUBLIC, BOUNCER_PRIVATE = generate_key_pair()


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, settings: Settings, emulators: Emulators, keys: Keys
) -> Settings:
    values: dict[str, object] = {
        "powerauth_multiple_activations": True,
        "push_registration_encryption_keys": json.dumps({BOUNCER_PUBLIC: BOUNCER_PRIVATE}),
        "zulip_push_app": APP,
    }
    marker = request.node.get_closest_marker("settings")
    if marker is not None:
        values.update(marker.kwargs)  # a test's own settings win
    return with_emulators(settings, emulators, keys, **values)


@pytest.fixture
async def app(services: Services, keys: Keys) -> str:
    """The push app every face sends through, with credentials for the three emulators."""
    await configure_app(services.push_apps, keys, APP)
    return APP


@pytest.fixture
async def pa(relay: Listening, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the PowerAuth face, with a valid integrator key."""
    key = await services.powerauth.api_keys.create("tests")
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=relay.api_url, headers=headers, timeout=30) as client:
        yield client


async def call(
    client: httpx.AsyncClient,
    path: str,
    request_object: Any = None,
    *,
    method: str = "POST",
    wrap: bool = True,
    params: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """One PowerAuth call: ``requestObject`` enveloped unless ``wrap`` is False."""
    content = None
    if request_object is not None:
        body = {"requestObject": request_object} if wrap else request_object
        content = json.dumps(body)
    response = await client.request(
        method,
        path,
        content=content,
        params=params,
        headers={"Content-Type": "application/json"} if content is not None else {},
    )
    return response.status_code, response.json()


def error_of(body: dict[str, Any]) -> tuple[str, str]:
    """``(code, message)`` of a PowerAuth error body."""
    assert body["status"] == "ERROR", body
    return body["responseObject"]["code"], body["responseObject"]["message"]
