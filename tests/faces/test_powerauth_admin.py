"""PowerAuth ``/admin/app/...``: applications and their provider credentials (with the
deprecated aliases); the detail never shows a secret."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from relay.registry import Services
from tests.faces.conftest import APP, call, error_of
from tests.pushkit import BUNDLE_ID, FCM_PROJECT, KEY_ID, TEAM_ID, Keys

pytestmark = pytest.mark.usefixtures("relay")


def apns_body(keys: Keys, app: str = "new-app", **overrides: object) -> dict[str, object]:
    return {
        "appId": app,
        "bundle": BUNDLE_ID,
        "keyId": KEY_ID,
        "teamId": TEAM_ID,
        "environment": None,
        "privateKeyBase64": base64.b64encode(keys.apns_credentials().key_pem).decode(),
        **overrides,
    }


def fcm_body(keys: Keys, app: str = "new-app") -> dict[str, object]:
    account = keys.service_account_json().encode()
    return {
        "appId": app,
        "projectId": FCM_PROJECT,
        "privateKeyBase64": base64.b64encode(account).decode(),
    }


def hms_body(app: str = "new-app") -> dict[str, object]:
    return {"appId": app, "projectId": "HMS123", "clientId": "104", "clientSecret": "s3cret"}


async def app_list(pa: httpx.AsyncClient, path: str = "/admin/app/list") -> list[dict[str, object]]:
    status, body = await call(pa, path, method="GET")
    assert status == 200
    return list(body["responseObject"]["applicationList"])


async def test_create_list_and_unconfigured(pa: httpx.AsyncClient, app: str) -> None:
    status, body = await call(pa, "/admin/app/create", {"appId": "new-app"})
    assert (status, body) == (200, {"status": "OK", "responseObject": {"appId": "new-app"}})
    assert await app_list(pa) == [
        {"appId": APP, "apns": True, "fcm": True, "hms": True},
        {"appId": "new-app", "apns": False, "fcm": False, "hms": False},
    ]
    assert await app_list(pa, "/admin/app/unconfigured/list") == [
        {"appId": "new-app", "apns": None, "fcm": None, "hms": None}
    ]
    status, body = await call(pa, "/admin/app/create", {"appId": "new-app"})
    assert status == 400
    assert error_of(body)[1] == "Application already exists"
    status, body = await call(pa, "/admin/app/create", {"appId": "bad name!"})
    assert status == 400
    assert error_of(body)[0] == "ERROR_GENERIC"


@pytest.mark.parametrize(
    ("path", "method"),
    [("/admin/app/apns", "PUT"), ("/admin/app/apns", "POST"), ("/admin/app/ios/update", "PUT")],
)
async def test_apns_update_and_detail_without_secrets(
    pa: httpx.AsyncClient, app: str, keys: Keys, path: str, method: str
) -> None:
    await call(pa, "/admin/app/create", {"appId": "new-app"})
    status, body = await call(pa, path, apns_body(keys), method=method)
    assert (status, body) == (200, {"status": "OK"})
    status, body = await call(
        pa,
        "/admin/app/detail",
        {"appId": "new-app", "includeApns": True, "includeFcm": True, "includeHms": True},
    )
    assert status == 200
    assert body["responseObject"] == {
        "application": {"appId": "new-app", "apns": True, "fcm": False, "hms": False},
        "apnsBundle": BUNDLE_ID,
        "apnsKeyId": KEY_ID,
        "apnsTeamId": TEAM_ID,
        "apnsEnvironment": "production",
    }


async def test_fcm_and_hms_update_detail_and_remove(
    pa: httpx.AsyncClient, app: str, keys: Keys, services: Services
) -> None:
    await call(pa, "/admin/app/create", {"appId": "new-app"})
    assert (await call(pa, "/admin/app/fcm", fcm_body(keys), method="PUT"))[0] == 200
    assert (await call(pa, "/admin/app/android/update", fcm_body(keys), method="PUT"))[0] == 200
    assert (await call(pa, "/admin/app/hms", hms_body(), method="PUT"))[0] == 200
    assert (await call(pa, "/admin/app/huawei/update", hms_body(), method="POST"))[0] == 200
    status, body = await call(
        pa, "/admin/app/detail", {"appId": "new-app", "includeFcm": True, "includeHms": True}
    )
    assert body["responseObject"] == {
        "application": {"appId": "new-app", "apns": False, "fcm": True, "hms": True},
        "fcmProjectId": FCM_PROJECT,
        "hmsProjectId": "HMS123",
    }
    text = json.dumps(body)
    assert "s3cret" not in text
    assert "PRIVATE KEY" not in text
    status, _ = await call(pa, "/admin/app/fcm", method="DELETE", params={"appId": "new-app"})
    assert status == 200
    status, _ = await call(pa, "/admin/app/huawei/remove", {"appId": "new-app"}, method="POST")
    assert status == 200
    info = await services.push_apps.get("new-app")
    assert info.providers == {}


async def test_apns_remove_by_query_and_by_deprecated_body(
    pa: httpx.AsyncClient, app: str, keys: Keys, services: Services
) -> None:
    await call(pa, "/admin/app/create", {"appId": "new-app"})
    await call(pa, "/admin/app/apns", apns_body(keys), method="PUT")
    status, _ = await call(pa, "/admin/app/apns", method="DELETE", params={"appId": "new-app"})
    assert status == 200
    assert "apns" not in (await services.push_apps.get("new-app")).providers
    await call(pa, "/admin/app/apns", apns_body(keys), method="PUT")
    status, _ = await call(pa, "/admin/app/ios/remove", {"appId": "new-app"}, method="DELETE")
    assert status == 200
    assert "apns" not in (await services.push_apps.get("new-app")).providers
    status, body = await call(pa, "/admin/app/apns", method="DELETE")
    assert status == 400
    assert error_of(body)[1] == "App ID must not be null."


@pytest.mark.parametrize(
    ("path", "make", "text"),
    [
        ("/admin/app/apns", lambda k: apns_body(k, bundle=""), "bundle must not be blank."),
        ("/admin/app/apns", lambda k: apns_body(k, keyId=None), "keyId must not be blank."),
        (
            "/admin/app/apns",
            lambda k: apns_body(k, privateKeyBase64="%%%"),
            "privateKeyBase64 must be Base64.",
        ),
        (
            "/admin/app/apns",
            lambda k: apns_body(k, privateKeyBase64=base64.b64encode(b"junk").decode()),
            None,
        ),
        (
            "/admin/app/apns",
            lambda k: apns_body(k, environment="staging"),
            "Environment must be development, production or null.",
        ),
        (
            "/admin/app/apns",
            lambda k: apns_body(k, app="missing"),
            "Application with given ID does not exist",
        ),
        (
            "/admin/app/fcm",
            lambda k: {**fcm_body(k), "privateKeyBase64": base64.b64encode(b"{}").decode()},
            None,
        ),
        (
            "/admin/app/hms",
            lambda k: {**hms_body(), "clientSecret": ""},
            "clientSecret must not be blank.",
        ),
    ],
)
async def test_credential_updates_reject_bad_requests(
    pa: httpx.AsyncClient,
    app: str,
    keys: Keys,
    services: Services,
    path: str,
    make: object,
    text: str | None,
) -> None:
    await call(pa, "/admin/app/create", {"appId": "new-app"})
    status, body = await call(pa, path, make(keys), method="PUT")  # type: ignore[operator]
    assert status == 400
    code, message = error_of(body)
    assert code == "ERROR_GENERIC"
    if text is not None:
        assert message == text
    assert (await services.push_apps.get("new-app")).providers == {}


async def test_detail_of_an_unknown_app_fails(pa: httpx.AsyncClient, app: str) -> None:
    status, body = await call(pa, "/admin/app/detail", {"appId": "ghost"})
    assert status == 400
    assert error_of(body)[1] == "Application with given ID does not exist"
