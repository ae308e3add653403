"""PowerAuth ``/push/device/...``: registrations against local activations, with the
reference's lookup order, validation messages and both spellings of the routes."""

from __future__ import annotations

import httpx
import pytest

from storage.db import Database
from storage.repos import powerauth, push_registrations
from storage.repos.push_registrations import POWERAUTH
from tests.faces.conftest import APP, call, error_of
from tests.pushkit import APNS_TOKEN

pytestmark = pytest.mark.usefixtures("relay")


def device(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "appId": APP,
        "token": APNS_TOKEN,
        "platform": "apns",
        "environment": "development",
        "activationId": "act-1",
        "userId": "alice",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


async def rows(db: Database, activation: str) -> list[push_registrations.Registration]:
    return await db.read(lambda conn: push_registrations.by_ref(conn, POWERAUTH, activation))


async def test_create_stores_one_registration(
    pa: httpx.AsyncClient, app: str, db: Database
) -> None:
    status, body = await call(pa, "/push/device/create", device())
    assert (status, body) == (200, {"status": "OK"})
    (row,) = await rows(db, "act-1")
    assert (row.user_name, row.platform, row.environment, row.token, row.active) == (
        "alice",
        "apns",
        "development",
        APNS_TOKEN,
        True,
    )


async def test_create_again_and_token_rotation_reuse_the_row(
    pa: httpx.AsyncClient, app: str, db: Database
) -> None:
    await call(pa, "/push/device/create", device())
    (first,) = await rows(db, "act-1")
    await call(pa, "/push/device/create", device())
    await call(pa, "/push/device/create", device(token="b2" * 32))
    (row,) = await rows(db, "act-1")
    assert row.id == first.id
    assert row.token == "b2" * 32


async def test_new_activation_on_a_device_moves_its_registration(
    pa: httpx.AsyncClient, app: str, db: Database
) -> None:
    await call(pa, "/push/device/create", device())
    await call(pa, "/push/device/create", device(activationId="act-2", userId="bob"))
    assert await rows(db, "act-1") == []
    (row,) = await rows(db, "act-2")
    assert row.user_name == "bob"


async def test_deprecated_platform_names_are_accepted(
    pa: httpx.AsyncClient, app: str, db: Database
) -> None:
    for index, (name, stored) in enumerate(
        (("ios", "apns"), ("android", "fcm"), ("huawei", "hms"))
    ):
        status, _ = await call(
            pa,
            "/push/device/create",
            device(
                platform=name, token=f"{index:02x}" * 32, activationId=f"a{index}", environment=None
            ),
        )
        assert status == 200
        (row,) = await rows(db, f"a{index}")
        assert row.platform == stored
        assert row.environment == "production"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"appId": None}, "App ID must not be null."),
        ({"activationId": None}, "Activation ID must not be null."),
        ({"platform": None}, "Platform must not be null."),
        ({"token": ""}, "Push token must not be null or empty."),
        ({"token": None}, "Push token must not be null or empty."),
        ({"appId": "no-such-app"}, "Application with given ID does not exist"),
        ({"platform": "symbian"}, "Platform must be one of apns, fcm, hms."),
        ({"environment": "staging"}, "Environment must be development or production."),
        ({"pushKey": "not-a-key"}, "Invalid pushKey"),
    ],
)
async def test_create_rejects_bad_requests(
    pa: httpx.AsyncClient, app: str, db: Database, change: dict[str, object], message: str
) -> None:
    body = {**device(), **change}
    body = {key: value for key, value in body.items() if value is not None}
    status, answer = await call(pa, "/push/device/create", body)
    assert status == 400
    assert error_of(answer) == ("ERROR_GENERIC", message)
    assert await rows(db, "act-1") == []


async def test_unknown_or_removed_activation_is_refused(
    pa: httpx.AsyncClient, app: str, db: Database
) -> None:
    status, answer = await call(pa, "/push/device/create", device(userId=None))
    assert status == 400
    assert error_of(answer)[1] == (
        "Device registration failed because associated activation is not ACTIVE"
    )
    await call(
        pa,
        "/push/device/status/update",
        {"activationId": "act-9", "activationStatus": "REMOVED", "userId": "carol"},
        wrap=False,
    )
    status, answer = await call(
        pa, "/push/device/create", device(activationId="act-9", userId=None)
    )
    assert status == 400
    assert await rows(db, "act-9") == []


async def test_a_known_activation_needs_no_user(
    pa: httpx.AsyncClient, app: str, db: Database
) -> None:
    await call(
        pa,
        "/push/device/status/update",
        {"activationId": "act-5", "activationStatus": "ACTIVE", "userId": "dave"},
        wrap=False,
    )
    status, _ = await call(pa, "/push/device/create", device(activationId="act-5", userId=None))
    assert status == 200
    (row,) = await rows(db, "act-5")
    assert row.user_name == "dave"


async def test_create_multi_registers_one_token_for_each_activation(
    pa: httpx.AsyncClient, app: str, db: Database
) -> None:
    body = device(activationIds=["m1", "m2", "m2"])
    del body["activationId"]
    status, answer = await call(pa, "/push/device/create/multi", body)
    assert (status, answer) == (200, {"status": "OK"})
    assert [len(await rows(db, name)) for name in ("m1", "m2")] == [1, 1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"activationIds": []}, "Activation IDs must not be empty."),
        (
            {"platform": "fcm", "environment": "production"},
            "Environment is only allowed for the APNs platform.",
        ),
    ],
)
async def test_create_multi_rejects_bad_requests(
    pa: httpx.AsyncClient, app: str, change: dict[str, object], message: str
) -> None:
    body = {**device(activationIds=["m1"]), **change}
    del body["activationId"]
    status, answer = await call(pa, "/push/device/create/multi", body)
    assert status == 400
    assert error_of(answer)[1] == message


@pytest.mark.settings(powerauth_multiple_activations=False)
async def test_create_multi_is_off_unless_enabled(pa: httpx.AsyncClient, app: str) -> None:
    body = device(activationIds=["m1"])
    del body["activationId"]
    status, answer = await call(pa, "/push/device/create/multi", body)
    assert status == 400
    assert error_of(answer)[1] == (
        "Registration of multiple associated activations per device is not enabled."
    )


@pytest.mark.parametrize("path", ["/push/device/delete", "/push/device/remove"])
@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_delete_removes_every_registration_of_the_token(
    pa: httpx.AsyncClient, app: str, db: Database, path: str, method: str
) -> None:
    await call(pa, "/push/device/create", device())
    status, answer = await call(pa, path, {"appId": APP, "token": APNS_TOKEN}, method=method)
    assert (status, answer) == (200, {"status": "OK"})
    assert await rows(db, "act-1") == []
    # Deleting what is not there is still a success.
    status, _ = await call(pa, path, {"appId": APP, "token": APNS_TOKEN}, method=method)
    assert status == 200


async def test_delete_needs_app_and_token(pa: httpx.AsyncClient, app: str) -> None:
    status, answer = await call(pa, "/push/device/delete", {"appId": APP})
    assert status == 400
    assert error_of(answer)[1] == "Push token must not be null or empty."
    status, answer = await call(pa, "/push/device/delete", {"token": "x"})
    assert status == 400
    assert error_of(answer)[1] == "App ID must not be null."


@pytest.mark.parametrize("wrap", [False, True])
async def test_status_update_sets_the_active_flag(
    pa: httpx.AsyncClient, app: str, db: Database, wrap: bool
) -> None:
    await call(pa, "/push/device/create", device())
    status, answer = await call(
        pa,
        "/push/device/status/update",
        {"activationId": "act-1", "activationStatus": "BLOCKED"},
        wrap=wrap,
    )
    assert (status, answer) == (200, {"status": "OK"})
    (row,) = await rows(db, "act-1")
    assert row.active is False
    known = await db.read(lambda conn: powerauth.activations(conn, ["act-1"]))
    assert known["act-1"].status == "BLOCKED"
    await call(
        pa,
        "/push/device/status/update",
        {"activationId": "act-1", "activationStatus": "ACTIVE"},
        method="PUT",
    )
    (row,) = await rows(db, "act-1")
    assert row.active is True


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"activationStatus": "ACTIVE"}, "Activation ID must not be null."),
        (
            {"activationId": "act-1"},
            "Update device status failed because activation status is unknown",
        ),
        (
            {"activationId": "act-1", "activationStatus": "SLEEPING"},
            "Activation status must be one of CREATED, PENDING_COMMIT, ACTIVE, BLOCKED, REMOVED.",
        ),
    ],
)
async def test_status_update_rejects_bad_requests(
    pa: httpx.AsyncClient, app: str, body: dict[str, object], message: str
) -> None:
    status, answer = await call(pa, "/push/device/status/update", body, wrap=False)
    assert status == 400
    assert error_of(answer) == ("ERROR_GENERIC", message)


async def test_malformed_bodies_are_request_errors(pa: httpx.AsyncClient, app: str) -> None:
    response = await pa.post(
        "/push/device/create", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert error_of(response.json())[0] == "ERROR_REQUEST"
    status, answer = await call(pa, "/push/device/create", device(), wrap=False)
    assert status == 400
    assert error_of(answer)[1] == "Request object must not be null."
    response = await pa.post(
        "/push/device/create", content=b"appId=x", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
