"""PowerAuth ``/push/message/send`` and ``/push/message/batch/send`` through the
emulators: per-platform counts, the payload mapping, ``personal``, ``silent``,
ASYNCHRONOUS through the queue, batch limits, end-to-end encrypted devices."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import nacl.secret
import pytest

from tests.faces.conftest import APP, call, error_of
from tests.pushkit import APNS_TOKEN, Emulators
from tests.waiting import until_true

pytestmark = pytest.mark.usefixtures("relay")

FCM_TOKEN = "fcm-token-alice"
HMS_TOKEN = "hms-token-alice"
PUSH_KEY = bytes(range(32))

BODY = {
    "title": "Balance update",
    "titleLocKey": "balance.update.title",
    "titleLocArgs": ["745"],
    "body": "Your balance is now $745.00",
    "bodyLocKey": "balance.update.body",
    "bodyLocArgs": [],
    "badge": 3,
    "sound": "default",
    "icon": "custom-icon",
    "category": "balance-update",
    "collapseKey": "balance-update",
    "validUntil": "2099-12-11T21:22:29.923Z",
    "extras": {"_comment": "Any custom data.", "amount": 745, "skipped": None},
}


async def register(
    pa: httpx.AsyncClient, user: str, activation: str, platform: str, token: str, **extra: str
) -> None:
    status, body = await call(
        pa,
        "/push/device/create",
        {
            "appId": APP,
            "token": token,
            "platform": platform,
            "activationId": activation,
            "userId": user,
            **extra,
        },
    )
    assert status == 200, body


async def three_devices(pa: httpx.AsyncClient, user: str = "alice") -> None:
    await register(pa, user, f"{user}-ios", "apns", APNS_TOKEN)
    await register(pa, user, f"{user}-android", "fcm", FCM_TOKEN)
    await register(pa, user, f"{user}-huawei", "hms", HMS_TOKEN)


def message(user: str = "alice", **overrides: Any) -> dict[str, Any]:
    return {"userId": user, "body": BODY, **overrides}


def counts(sent: int = 0, failed: int = 0, pending: int = 0) -> dict[str, int]:
    return {"sent": sent, "pending": pending, "failed": failed, "total": sent + failed + pending}


async def test_synchronous_send_reaches_every_platform_and_counts(
    pa: httpx.AsyncClient, app: str, emulators: Emulators
) -> None:
    await three_devices(pa)
    status, body = await call(pa, "/push/message/send", {"appId": APP, "message": message()})
    assert status == 200
    one = counts(sent=1)
    assert body == {
        "status": "OK",
        "responseObject": {
            "mode": "SYNCHRONOUS",
            "result": {"apns": one, "fcm": one, "hms": one},
            "apns": one,
            "fcm": one,
            "hms": one,
        },
    }
    (apns,) = emulators.apns.received
    assert apns.token == APNS_TOKEN
    assert apns.payload["aps"] == {
        "alert": {
            "title": "Balance update",
            "body": "Your balance is now $745.00",
            "title-loc-key": "balance.update.title",
            "title-loc-args": ["745"],
            "loc-key": "balance.update.body",
        },
        "sound": "default",
        "badge": 3,
        "category": "balance-update",
        "thread-id": "balance-update",
    }
    assert apns.payload["_comment"] == "Any custom data."
    assert apns.payload["amount"] == "745"
    assert "skipped" not in apns.payload
    assert apns.headers["apns-collapse-id"] == "balance-update"
    assert apns.headers["apns-priority"] == "10"
    assert apns.headers["apns-push-type"] == "alert"
    expected = int(datetime(2099, 12, 11, 21, 22, 29, tzinfo=UTC).timestamp())
    assert int(apns.headers["apns-expiration"]) == expected
    (fcm,) = emulators.fcm.received
    assert fcm.payload["data"] == {"_comment": "Any custom data.", "amount": "745"}
    assert fcm.payload["android"]["collapse_key"] == "balance-update"
    assert fcm.payload["android"]["notification"] == {
        "title_loc_key": "balance.update.title",
        "title_loc_args": ["745"],
        "body_loc_key": "balance.update.body",
        "icon": "custom-icon",
        "sound": "default",
        "tag": "balance-update",
    }
    assert fcm.payload["notification"] == {
        "title": "Balance update",
        "body": "Your balance is now $745.00",
    }
    (hms,) = emulators.hms.received
    assert hms.payload["android"]["notification"]["title"] == "Balance update"
    assert hms.payload["android"]["notification"]["icon"] == "custom-icon"


async def test_silent_normal_priority_is_a_background_push(
    pa: httpx.AsyncClient, app: str, emulators: Emulators
) -> None:
    await register(pa, "alice", "alice-ios", "apns", APNS_TOKEN)
    await register(pa, "alice", "alice-android", "fcm", FCM_TOKEN)
    status, _ = await call(
        pa,
        "/push/message/send",
        {
            "appId": APP,
            "message": message(priority="NORMAL", attributes={"silent": True}),
        },
    )
    assert status == 200
    (apns,) = emulators.apns.received
    assert apns.payload["aps"] == {
        "content-available": 1,
        "badge": 3,
        "thread-id": "balance-update",
    }
    assert apns.headers["apns-push-type"] == "background"
    assert apns.headers["apns-priority"] == "5"
    (fcm,) = emulators.fcm.received
    assert "notification" not in fcm.payload
    assert "notification" not in fcm.payload["android"]
    assert fcm.payload["android"]["priority"] == "NORMAL"


async def test_personal_messages_skip_inactive_activations(
    pa: httpx.AsyncClient, app: str, emulators: Emulators
) -> None:
    await three_devices(pa)
    await call(
        pa,
        "/push/device/status/update",
        {"activationId": "alice-android", "activationStatus": "BLOCKED"},
        wrap=False,
    )
    status, body = await call(
        pa,
        "/push/message/send",
        {"appId": APP, "message": message(attributes={"personal": True})},
    )
    assert status == 200
    result = body["responseObject"]["result"]
    assert (result["apns"], result["fcm"], result["hms"]) == (counts(1), counts(), counts(1))
    assert emulators.fcm.received == []
    # Not personal: the blocked activation still gets it.
    await call(pa, "/push/message/send", {"appId": APP, "message": message()})
    assert len(emulators.fcm.received) == 1


async def test_activation_id_narrows_to_one_device(
    pa: httpx.AsyncClient, app: str, emulators: Emulators
) -> None:
    await three_devices(pa)
    status, body = await call(
        pa,
        "/push/message/send",
        {"appId": APP, "message": message(activationId="alice-huawei")},
    )
    assert status == 200
    assert body["responseObject"]["hms"] == counts(1)
    assert body["responseObject"]["apns"] == counts()
    assert [item.token for item in emulators.hms.received] == [HMS_TOKEN]
    assert emulators.apns.received == []
    assert emulators.fcm.received == []


async def test_a_user_without_devices_gets_zero_counts(pa: httpx.AsyncClient, app: str) -> None:
    status, body = await call(
        pa, "/push/message/send", {"appId": APP, "message": message("nobody")}
    )
    assert status == 200
    assert body["responseObject"]["fcm"] == counts()


async def test_provider_failures_are_counted_failed(
    pa: httpx.AsyncClient, app: str, emulators: Emulators
) -> None:
    await register(pa, "alice", "alice-android", "fcm", FCM_TOKEN)
    # A body over FCM's data limit is refused before it is sent.
    huge = {**BODY, "extras": {"blob": "x" * 5000}}
    status, body = await call(
        pa, "/push/message/send", {"appId": APP, "message": message(body=huge)}
    )
    assert status == 200
    assert body["responseObject"]["fcm"] == counts(failed=1)
    assert emulators.fcm.received == []


async def test_asynchronous_send_returns_at_once_and_is_delivered_by_the_queue(
    pa: httpx.AsyncClient, app: str, emulators: Emulators
) -> None:
    await three_devices(pa)
    status, body = await call(
        pa,
        "/push/message/send",
        {"appId": APP, "mode": "ASYNCHRONOUS", "message": message()},
    )
    assert (status, body) == (200, {"status": "OK", "responseObject": {"mode": "ASYNCHRONOUS"}})
    await until_true(
        lambda: (
            (len(emulators.apns.received), len(emulators.fcm.received), len(emulators.hms.received))
            == (1, 1, 1)
        )
    )


async def test_asynchronous_batch_reaches_every_user(
    pa: httpx.AsyncClient, app: str, emulators: Emulators
) -> None:
    users = [f"user{index}" for index in range(20)]
    for index, user in enumerate(users):
        await register(pa, user, f"{user}-a", "fcm", f"fcm-{index}")
    status, body = await call(
        pa,
        "/push/message/batch/send",
        {"appId": APP, "mode": "ASYNCHRONOUS", "batch": [message(user) for user in users]},
    )
    assert (status, body["responseObject"]) == (200, {"mode": "ASYNCHRONOUS"})
    await until_true(lambda: len(emulators.fcm.received) == 20)
    assert sorted(item.token for item in emulators.fcm.received) == sorted(
        f"fcm-{index}" for index in range(20)
    )


async def test_synchronous_batch_counts_all_messages(
    pa: httpx.AsyncClient, app: str, emulators: Emulators
) -> None:
    await three_devices(pa, "alice")
    await register(pa, "bob", "bob-android", "fcm", "fcm-bob")
    status, body = await call(
        pa,
        "/push/message/batch/send",
        {"appId": APP, "batch": [message("alice"), message("bob")]},
    )
    assert status == 200
    assert body["responseObject"]["fcm"] == counts(2)
    assert body["responseObject"]["result"]["apns"] == counts(1)


@pytest.mark.parametrize(
    ("request_object", "text"),
    [
        ({"appId": APP, "batch": []}, "Push message batch must not be empty."),
        (
            {"appId": APP, "batch": [message()] * 21},
            "Too many messages in batch - do no send more than 20 messages at once to avoid "
            "server congestion.",
        ),
        (
            {"appId": APP, "batch": [message(), {"body": BODY}]},
            "Push message at index: 1 is not valid. Nested error is: "
            "Push message must contain a user ID.",
        ),
        ({"batch": [message()]}, "App ID must not be null."),
    ],
)
async def test_batch_rejects_bad_requests(
    pa: httpx.AsyncClient, app: str, emulators: Emulators, request_object: Any, text: str
) -> None:
    await rejected(pa, emulators, "/push/message/batch/send", request_object, text)


async def rejected(
    pa: httpx.AsyncClient, emulators: Emulators, path: str, request_object: Any, text: str
) -> None:
    """The request is refused with ``text`` and nothing reaches any provider."""
    await three_devices(pa)
    status, body = await call(pa, path, request_object)
    assert status == 400
    assert error_of(body) == ("ERROR_GENERIC", text)
    assert emulators.apns.received == []
    assert emulators.fcm.received == []
    assert emulators.hms.received == []


@pytest.mark.parametrize(
    ("request_object", "text"),
    [
        ({"appId": APP}, "Message must not be empty"),
        ({"message": message()}, "App ID must not be null."),
        ({"appId": "nope", "message": message()}, "Application with given ID does not exist"),
        ({"appId": APP, "message": {"body": BODY}}, "Push message must contain a user ID."),
        (
            {"appId": APP, "message": {"userId": "alice"}},
            "Push message payload (body) must not be null.",
        ),
        (
            {"appId": APP, "mode": "LATER", "message": message()},
            "Mode must be SYNCHRONOUS or ASYNCHRONOUS.",
        ),
        ({"appId": APP, "message": message(priority="URGENT")}, "Priority must be NORMAL or HIGH."),
        (
            {"appId": APP, "message": message(body={**BODY, "validUntil": "tomorrow"})},
            "validUntil must be an ISO 8601 timestamp.",
        ),
        (
            {"appId": APP, "message": message(body={**BODY, "badge": -1})},
            "badge must be a non-negative integer.",
        ),
    ],
)
async def test_send_rejects_bad_requests(
    pa: httpx.AsyncClient, app: str, emulators: Emulators, request_object: Any, text: str
) -> None:
    await rejected(pa, emulators, "/push/message/send", request_object, text)


async def test_a_device_with_a_push_key_gets_the_message_encrypted(
    pa: httpx.AsyncClient, app: str, emulators: Emulators
) -> None:
    key_text = base64.b64encode(b"\x31" + PUSH_KEY).decode()
    await register(pa, "alice", "alice-android", "fcm", FCM_TOKEN, pushKey=key_text)
    status, body = await call(pa, "/push/message/send", {"appId": APP, "message": message()})
    assert status == 200
    assert body["responseObject"]["fcm"] == counts(1)
    (fcm,) = emulators.fcm.received
    assert set(fcm.payload["data"]) == {"encrypted_data"}
    assert "notification" not in fcm.payload
    sealed = base64.b64decode(fcm.payload["data"]["encrypted_data"])
    content = json.loads(nacl.secret.SecretBox(PUSH_KEY).decrypt(sealed))
    assert content["title"] == "Balance update"
    assert content["amount"] == "745"
