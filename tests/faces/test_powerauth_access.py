"""The PowerAuth face requires an integrator key (the reference has no authentication):
401 in PowerAuth's error format without one; ``RELAY_POWERAUTH_OPEN`` opens it."""

from __future__ import annotations

import logging

import httpx
import pytest
import trio

from relay.process.server import Listening
from relay.registry import Services
from relay.services.api_keys import CACHE_SECS, ApiKeyService
from storage.db import Database
from tests.faces.conftest import call, error_of

PROTECTED = [
    ("GET", "/push/service/status"),
    ("POST", "/push/device/create"),
    ("POST", "/push/message/send"),
    ("GET", "/push/campaign/list"),
    ("GET", "/admin/app/list"),
    ("GET", "/inbox/messages/count"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("authorization", [None, "Bearer rk_wrong", "Basic abc"])
async def test_requests_without_a_valid_key_are_refused(
    http: httpx.AsyncClient, method: str, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await http.request(method, path, headers=headers)
    assert response.status_code == 401
    assert error_of(response.json())[0] == "ERROR_UNAUTHORIZED"


async def test_service_status_with_a_key(pa: httpx.AsyncClient) -> None:
    status, body = await call(pa, "/push/service/status", method="GET")
    assert status == 200
    info = body["responseObject"]
    assert info["applicationName"] == "powerauth-push"
    assert set(info) == {
        "applicationName",
        "applicationDisplayName",
        "applicationEnvironment",
        "version",
        "buildTime",
        "timestamp",
    }


async def test_a_revoked_key_stops_working(
    relay: Listening, services: Services, http: httpx.AsyncClient
) -> None:
    key = await services.powerauth.api_keys.create("short-lived")
    headers = {"Authorization": f"Bearer {key}"}
    assert (await http.get("/admin/app/list", headers=headers)).status_code == 200
    await services.powerauth.api_keys.revoke("short-lived")
    assert (await http.get("/admin/app/list", headers=headers)).status_code == 401


async def test_a_key_revoked_by_another_process_stops_working_within_half_a_second(
    relay: Listening, services: Services, http: httpx.AsyncClient, db: Database
) -> None:
    key = await services.powerauth.api_keys.create("revoked-elsewhere")
    headers = {"Authorization": f"Bearer {key}"}
    assert (await http.get("/admin/app/list", headers=headers)).status_code == 200
    await ApiKeyService(db).revoke("revoked-elsewhere")  # as `relay keys revoke` does
    await trio.sleep(CACHE_SECS + 0.1)
    assert (await http.get("/admin/app/list", headers=headers)).status_code == 401


@pytest.mark.settings(powerauth_open=True)
async def test_the_open_setting_serves_without_keys_and_warns(
    nursery: object, caplog: pytest.LogCaptureFixture, http: httpx.AsyncClient
) -> None:
    del nursery
    response = await http.get("/admin/app/list")
    assert response.status_code == 200
    assert any(
        record.levelno == logging.WARNING and "RELAY_POWERAUTH_OPEN" in record.getMessage()
        for record in caplog.records
    )
