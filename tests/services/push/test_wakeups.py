"""Relay wake-ups end to end: the running server, real gateway clients, and the
provider emulators over TLS. A device offline when messages arrive gets exactly one
content-free wake-up; one that is connected and acknowledges in time gets none; dead
tokens are removed only on the safe signals, compare-and-clear, and a misconfigured app
trips the circuit breaker instead of losing its tokens."""

from __future__ import annotations

import base64
import json

import httpx
import nacl.secret
import pytest
import trio

from providers.emulators.faults import Fault, FaultKind
from relay.client import Outgoing, connect_gateway
from relay.config import Settings
from relay.registry import Services
from storage.db import Database
from storage.ids import now_us
from storage.repos import push_jobs, push_tokens
from tests.factories import Device, new_device
from tests.messaging import receive_envelopes
from tests.pushkit import APNS_TOKEN, Emulators, Keys, configure_app, with_emulators
from tests.waiting import until, until_true

PUSH_KEY = bytes(range(32))
PUSH_KEY_TEXT = base64.b64encode(b"\x31" + PUSH_KEY).decode()


@pytest.fixture
def settings(settings: Settings, emulators: Emulators, keys: Keys) -> Settings:
    return with_emulators(settings, emulators, keys)


@pytest.fixture
async def app(services: Services, keys: Keys) -> None:
    """The wake-up app, with credentials for the three emulators. Requested as an
    argument: pytest-trio does not run async fixtures named only in usefixtures."""
    await configure_app(services.push_apps, keys)


async def _registered_pair(
    http: httpx.AsyncClient, token: str, **registration: str
) -> tuple[Device, Device]:
    """A sender and a recipient whose device registered ``token`` for wake-ups."""
    sender, recipient = await new_device(http), await new_device(http)
    await recipient.client.put_push_token(token, **registration)
    return sender, recipient


async def _send(sender: Device, recipient: Device, text: bytes = b"hi") -> None:
    assert await sender.client.send_messages([Outgoing(recipient.id, text)]) == []


async def _token_of(db: Database, device: Device) -> str | None:
    rows = await db.read(lambda conn: push_tokens.of_devices(conn, [device.id]))
    return rows[device.id].token if device.id in rows else None


async def test_an_offline_device_gets_exactly_one_wake_up_for_a_burst(
    app: None, http: httpx.AsyncClient, emulators: Emulators
) -> None:
    sender, recipient = await _registered_pair(http, "fcm-offline")
    for index in range(10):
        await _send(sender, recipient, b"%d" % index)
    await until_true(lambda: len(emulators.fcm.received) == 1)
    await trio.sleep(2.5)  # longer than the push delay plus a poll: no second push
    [wake_up] = emulators.fcm.received
    assert wake_up.token == "fcm-offline"
    assert wake_up.payload["data"] == {"action": "check"}
    assert wake_up.payload["android"]["priority"] == "HIGH"
    assert wake_up.payload["android"]["collapse_key"] == "obscura_check"
    assert "notification" not in wake_up.payload


async def test_a_connected_device_that_acks_in_time_gets_none(
    app: None, http: httpx.AsyncClient, emulators: Emulators, db: Database
) -> None:
    sender, recipient = await _registered_pair(http, "fcm-online")
    async with connect_gateway(recipient.client) as gateway:
        await _send(sender, recipient)
        [batch] = await receive_envelopes(gateway, 1)
        await gateway.ack([envelope.id for envelope in batch])

        async def no_wake_up_pending() -> bool:
            counts = await db.read(push_jobs.counts)
            return counts.get("pending", 0) == 0

        await until(no_wake_up_pending)
        await trio.sleep(2.5)
    assert emulators.fcm.received == []


async def test_a_connected_device_that_does_not_ack_gets_one(
    app: None, http: httpx.AsyncClient, emulators: Emulators
) -> None:
    sender, recipient = await _registered_pair(http, "fcm-lazy")
    async with connect_gateway(recipient.client) as gateway:
        await _send(sender, recipient)
        await receive_envelopes(gateway, 1)
        await until_true(lambda: len(emulators.fcm.received) == 1)


async def test_connecting_cancels_the_pending_wake_up(
    app: None, http: httpx.AsyncClient, emulators: Emulators, db: Database
) -> None:
    sender, recipient = await _registered_pair(http, "fcm-connects")
    await _send(sender, recipient)
    assert (await db.read(push_jobs.counts)).get("pending") == 1
    async with connect_gateway(recipient.client) as gateway:
        await receive_envelopes(gateway, 1)
        assert (await db.read(push_jobs.counts)).get("pending", 0) == 0
    await trio.sleep(2.0)
    assert emulators.fcm.received == []


async def test_a_device_without_a_token_schedules_nothing(
    app: None, http: httpx.AsyncClient, db: Database
) -> None:
    sender, recipient = await new_device(http), await new_device(http)
    await _send(sender, recipient)
    assert await db.read(push_jobs.counts) == {}


async def test_low_pre_keys_wake_the_device(
    app: None, http: httpx.AsyncClient, emulators: Emulators
) -> None:
    fetcher = await new_device(http)
    owner = await new_device(http, one_time_pre_keys=1)
    await owner.client.put_push_token(APNS_TOKEN, platform="apns")
    await fetcher.client.fetch_bundles(owner.user_id)
    await until_true(lambda: len(emulators.apns.received) == 1)
    [wake_up] = emulators.apns.received
    assert wake_up.headers["apns-push-type"] == "background"
    assert wake_up.headers["apns-priority"] == "5"
    assert wake_up.headers["apns-collapse-id"] == "obscura_check"
    assert wake_up.payload == {"action": "check", "aps": {"content-available": 1}}


@pytest.mark.parametrize("platform", ["apns", "fcm", "hms"])
async def test_a_device_with_a_push_key_gets_an_encrypted_wake_up(
    app: None, platform: str, http: httpx.AsyncClient, emulators: Emulators
) -> None:
    token = APNS_TOKEN if platform == "apns" else f"{platform}-e2ee"
    sender, recipient = await _registered_pair(
        http, token, platform=platform, push_key=PUSH_KEY_TEXT
    )
    await _send(sender, recipient)
    emulator = {"apns": emulators.apns, "fcm": emulators.fcm, "hms": emulators.hms}[platform]
    await until_true(lambda: len(emulator.received) == 1)
    payload = emulator.received[0].payload
    if platform == "fcm":
        data = payload["data"]
    elif platform == "hms":
        data = json.loads(payload["data"])
    else:
        data = payload
    assert set(data) - {"aps"} == {"encrypted_data"}
    sealed = base64.b64decode(data["encrypted_data"])
    assert json.loads(nacl.secret.SecretBox(PUSH_KEY).decrypt(sealed)) == {"action": "check"}
    assert "action" not in json.dumps(payload)


async def test_apns_410_removes_a_token_registered_before_it(
    app: None, http: httpx.AsyncClient, emulators: Emulators, db: Database
) -> None:
    sender, recipient = await _registered_pair(http, APNS_TOKEN, platform="apns")
    later = now_us() // 1000 + 60_000
    emulators.apns.faults.per_token[APNS_TOKEN] = Fault(FaultKind.UNREGISTERED, timestamp_ms=later)
    await _send(sender, recipient)

    async def removed() -> bool:
        return await _token_of(db, recipient) is None

    await until(removed)


async def test_apns_410_older_than_the_registration_keeps_the_token(
    app: None, http: httpx.AsyncClient, emulators: Emulators, db: Database, services: Services
) -> None:
    sender, recipient = await _registered_pair(http, APNS_TOKEN, platform="apns")
    earlier = now_us() // 1000 - 60_000  # the app registered again after Apple's verdict
    emulators.apns.faults.per_token[APNS_TOKEN] = Fault(
        FaultKind.UNREGISTERED, timestamp_ms=earlier
    )
    await _send(sender, recipient)
    await until_true(lambda: services.push.stats.removals == 1)
    await services.push.invalidator.flush()
    assert await _token_of(db, recipient) == APNS_TOKEN


@pytest.mark.parametrize("kind", [FaultKind.UNREGISTERED, FaultKind.BAD_TOKEN])
async def test_fcm_dead_token_signals_remove_the_token(
    app: None, kind: FaultKind, http: httpx.AsyncClient, emulators: Emulators, db: Database
) -> None:
    sender, recipient = await _registered_pair(http, "fcm-dead")
    emulators.fcm.faults.per_token["fcm-dead"] = Fault(kind)
    await _send(sender, recipient)

    async def removed() -> bool:
        return await _token_of(db, recipient) is None

    await until(removed)


@pytest.mark.parametrize("kind", [FaultKind.RATE_LIMITED, FaultKind.UNAVAILABLE])
async def test_transient_errors_never_remove_the_token(
    app: None, kind: FaultKind, http: httpx.AsyncClient, emulators: Emulators, db: Database
) -> None:
    sender, recipient = await _registered_pair(http, "fcm-busy")
    emulators.fcm.faults.per_token["fcm-busy"] = Fault(kind, times=1)
    await _send(sender, recipient)
    await until_true(lambda: len(emulators.fcm.received) == 1)
    assert await _token_of(db, recipient) == "fcm-busy"


async def test_credential_errors_never_remove_the_token(
    app: None, http: httpx.AsyncClient, emulators: Emulators, db: Database, services: Services
) -> None:
    await services.push_apps.set_hms("relay", app_id="104123456", client_secret="wrong")
    sender, recipient = await _registered_pair(http, "hms-1", platform="hms")
    await _send(sender, recipient)
    await until_true(lambda: services.push.stats.failed == 1)
    await services.push.invalidator.flush()
    assert await _token_of(db, recipient) == "hms-1"


@pytest.mark.settings(notifications_push_delay_secs=0)
async def test_a_misconfigured_app_trips_the_breaker_and_keeps_its_tokens(
    app: None, http: httpx.AsyncClient, emulators: Emulators, db: Database, services: Services
) -> None:
    # Every token answered BadDeviceToken: the sandbox/production mix-up of push-reference §4.1.
    emulators.apns.faults.by_rate.append((1.0, Fault(FaultKind.BAD_TOKEN)))
    sender = await new_device(http)
    recipients = [await new_device(http) for _ in range(30)]
    for index, recipient in enumerate(recipients):
        await recipient.client.put_push_token(f"{index:02x}" * 32, platform="apns")
    for recipient in recipients:
        await _send(sender, recipient)
    await until_true(lambda: services.push.stats.failed == 30, seconds=15)
    await services.push.invalidator.flush()
    kept = [r for r in recipients if await _token_of(db, r) is not None]
    assert services.push.breaker.trips == 1
    # The breaker needs 20 samples to judge; after that no token is removed.
    assert len(kept) >= 10
    assert services.push.stats.removals_held == len(kept)


async def test_re_registering_replaces_platform_and_key(
    app: None, http: httpx.AsyncClient, db: Database
) -> None:
    device = await new_device(http)
    await device.client.put_push_token(
        "t1", platform="apns", environment="development", push_key=PUSH_KEY_TEXT
    )
    await device.client.put_push_token("t2")
    rows = await db.read(lambda conn: push_tokens.of_devices(conn, [device.id]))
    row = rows[device.id]
    assert (row.token, row.platform, row.environment, row.push_key) == (
        "t2",
        "fcm",
        "production",
        None,
    )


async def test_push_keys_are_stored_sealed(
    app: None, http: httpx.AsyncClient, db: Database
) -> None:
    device = await new_device(http)
    await device.client.put_push_token("t1", push_key=PUSH_KEY_TEXT)
    rows = await db.read(lambda conn: push_tokens.of_devices(conn, [device.id]))
    sealed = rows[device.id].push_key
    assert sealed is not None
    assert PUSH_KEY not in sealed
    assert len(sealed) == 24 + 32 + 16


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"token": "t", "platform": "gcm"}, "platform must be one of fcm, apns, hms"),
        ({"token": "t", "environment": "staging"}, "environment must be production or development"),
        ({"token": "t", "pushKey": "!!"}, "Invalid pushKey: push key is not valid base64"),
        (
            {"token": "t", "pushKey": base64.b64encode(b"\x32" + PUSH_KEY).decode()},
            "Invalid pushKey: push key must start with the byte 0x31",
        ),
        (
            {"token": "t", "pushKey": base64.b64encode(b"\x31" + PUSH_KEY[:31]).decode()},
            "Invalid pushKey: push key must be 33 bytes",
        ),
    ],
)
async def test_bad_push_token_fields_are_400_and_change_nothing(
    app: None, body: dict[str, str], message: str, http: httpx.AsyncClient, db: Database
) -> None:
    device = await new_device(http)
    await device.client.put_push_token("kept")
    response = await http.put("/v1/push-tokens", json=body, headers=device.headers)
    assert response.status_code == 400
    assert response.json() == {"error": message}
    assert await _token_of(db, device) == "kept"


async def test_unknown_fields_are_ignored_like_the_reference(
    app: None, http: httpx.AsyncClient, db: Database
) -> None:
    device = await new_device(http)
    response = await http.put(
        "/v1/push-tokens", json={"token": "t", "extra": 1}, headers=device.headers
    )
    assert response.status_code == 200
    assert await _token_of(db, device) == "t"
