"""The real senders through the pool against the emulators over TLS: success paths and
how each provider's faults are classified."""

from __future__ import annotations

import pytest

from providers.client import PushClient, Target
from providers.emulators.faults import Fault, FaultKind
from providers.message import Environment, Platform, PushMessage, Verdict
from tests.pushkit import APNS_TOKEN, BUNDLE_ID, Emulators, Keys

WAKE_UP = PushMessage(data={"action": "check"}, silent=True, collapse_key="obscura_check")
ALERT = PushMessage(data={"k": "v"}, title="Hello", body="World")


def _targets(keys: Keys) -> dict[Platform, Target]:
    return {
        Platform.APNS: Target(Platform.APNS, APNS_TOKEN, keys.apns_credentials()),
        Platform.FCM: Target(Platform.FCM, "fcm-token-1", keys.service_account()),
        Platform.HMS: Target(Platform.HMS, "hms-token-1", keys.hms_credentials()),
    }


def _emulator(emulators: Emulators, platform: Platform):  # type: ignore[no-untyped-def]
    return {
        Platform.APNS: emulators.apns,
        Platform.FCM: emulators.fcm,
        Platform.HMS: emulators.hms,
    }[platform]


@pytest.mark.parametrize("platform", list(Platform))
async def test_a_wake_up_is_delivered(
    platform: Platform, keys: Keys, emulators: Emulators, client: PushClient
) -> None:
    target = _targets(keys)[platform]
    outcome = await client.send(target, WAKE_UP)
    assert outcome.verdict is Verdict.SENT, outcome
    [received] = _emulator(emulators, platform).received
    assert received.token == target.token


async def test_apns_request_carries_the_documented_headers(
    keys: Keys, emulators: Emulators, client: PushClient
) -> None:
    await client.send(_targets(keys)[Platform.APNS], WAKE_UP)
    await client.send(_targets(keys)[Platform.APNS], ALERT)
    background, alert = emulators.apns.received
    assert background.headers["apns-topic"] == BUNDLE_ID
    assert background.headers["apns-push-type"] == "background"
    assert background.headers["apns-priority"] == "5"
    assert background.headers["apns-collapse-id"] == "obscura_check"
    assert background.payload == {"action": "check", "aps": {"content-available": 1}}
    assert alert.headers["apns-push-type"] == "alert"
    assert alert.headers["apns-priority"] == "10"
    assert alert.payload["aps"] == {"alert": {"title": "Hello", "body": "World"}}
    # One provider token for both: reused, not minted per request.
    assert client.provider_tokens.minted == 1


async def test_fcm_message_is_a_data_message_with_string_values(
    keys: Keys, emulators: Emulators, client: PushClient
) -> None:
    await client.send(_targets(keys)[Platform.FCM], WAKE_UP)
    [received] = emulators.fcm.received
    assert received.payload["data"] == {"action": "check"}
    assert received.payload["android"] == {"priority": "HIGH", "collapse_key": "obscura_check"}
    assert received.payload["apns"]["headers"]["apns-push-type"] == "background"
    assert "notification" not in received.payload


async def test_oauth_tokens_are_fetched_once_for_concurrent_sends(
    keys: Keys, emulators: Emulators, client: PushClient
) -> None:
    import trio

    async with trio.open_nursery() as nursery:
        for index in range(20):
            nursery.start_soon(
                client.send, Target(Platform.FCM, f"t{index}", keys.service_account()), WAKE_UP
            )
            nursery.start_soon(
                client.send, Target(Platform.HMS, f"h{index}", keys.hms_credentials()), WAKE_UP
            )
    assert emulators.fcm.tokens.issued == 1
    assert emulators.hms.tokens.issued == 1
    assert len(emulators.fcm.received) == len(emulators.hms.received) == 20


CLASSIFIED = [
    (Platform.APNS, FaultKind.UNREGISTERED, Verdict.UNREGISTERED, "Unregistered"),
    (Platform.APNS, FaultKind.BAD_TOKEN, Verdict.TOKEN_SUSPECT, "BadDeviceToken"),
    (Platform.APNS, FaultKind.SENDER_MISMATCH, Verdict.TOKEN_SUSPECT, "DeviceTokenNotForTopic"),
    (Platform.APNS, FaultKind.RATE_LIMITED, Verdict.RETRY, "TooManyRequests"),
    (Platform.APNS, FaultKind.SERVER_ERROR, Verdict.RETRY, "InternalServerError"),
    (Platform.APNS, FaultKind.UNAVAILABLE, Verdict.RETRY, "ServiceUnavailable"),
    (Platform.FCM, FaultKind.UNREGISTERED, Verdict.UNREGISTERED, "UNREGISTERED"),
    (Platform.FCM, FaultKind.BAD_TOKEN, Verdict.UNREGISTERED, "INVALID_ARGUMENT message.token"),
    (Platform.FCM, FaultKind.SENDER_MISMATCH, Verdict.TOKEN_SUSPECT, "SENDER_ID_MISMATCH"),
    (Platform.FCM, FaultKind.RATE_LIMITED, Verdict.RETRY, "QUOTA_EXCEEDED"),
    (Platform.FCM, FaultKind.SERVER_ERROR, Verdict.RETRY, "INTERNAL"),
    (Platform.FCM, FaultKind.UNAVAILABLE, Verdict.RETRY, "UNAVAILABLE"),
    (Platform.HMS, FaultKind.UNREGISTERED, Verdict.UNREGISTERED, "80300007"),
    (Platform.HMS, FaultKind.RATE_LIMITED, Verdict.RETRY, "80100017"),
    (Platform.HMS, FaultKind.SERVER_ERROR, Verdict.RETRY, "81000001"),
]


@pytest.mark.parametrize(("platform", "kind", "verdict", "reason"), CLASSIFIED)
async def test_provider_faults_are_classified(
    platform: Platform,
    kind: FaultKind,
    verdict: Verdict,
    reason: str,
    keys: Keys,
    emulators: Emulators,
    client: PushClient,
) -> None:
    target = _targets(keys)[platform]
    _emulator(emulators, platform).faults.per_token[target.token] = Fault(kind, retry_after=7)
    outcome = await client.send(target, WAKE_UP)
    assert (outcome.verdict, outcome.reason) == (verdict, reason)
    if kind is FaultKind.RATE_LIMITED and platform is not Platform.HMS:
        assert outcome.retry_after == 7
    assert _emulator(emulators, platform).received == []


async def test_apns_410_carries_the_provider_timestamp(
    keys: Keys, emulators: Emulators, client: PushClient
) -> None:
    emulators.apns.faults.per_token[APNS_TOKEN] = Fault(
        FaultKind.UNREGISTERED, timestamp_ms=1_700_000_000_000
    )
    outcome = await client.send(_targets(keys)[Platform.APNS], WAKE_UP)
    assert outcome.unregistered_at_ms == 1_700_000_000_000


@pytest.mark.parametrize("platform", list(Platform))
async def test_an_expired_provider_token_is_renewed_and_the_send_repeated(
    platform: Platform, keys: Keys, emulators: Emulators, client: PushClient
) -> None:
    target = _targets(keys)[platform]
    _emulator(emulators, platform).faults.per_token[target.token] = Fault(
        FaultKind.AUTH_EXPIRED, times=1
    )
    outcome = await client.send(target, WAKE_UP)
    assert outcome.verdict is Verdict.SENT, outcome
    if platform is Platform.APNS:
        assert client.provider_tokens.minted == 2
    elif platform is Platform.FCM:
        assert emulators.fcm.tokens.issued == 2
    else:
        assert emulators.hms.tokens.issued == 2


async def test_wrong_credentials_fail_without_touching_the_token(
    keys: Keys, emulators: Emulators, client: PushClient
) -> None:
    from providers.hms import HmsCredentials

    outcome = await client.send(
        Target(Platform.HMS, "hms-token-1", HmsCredentials("104123456", "wrong")), WAKE_UP
    )
    assert outcome.verdict is Verdict.FAILED
    assert outcome.reason.startswith("credentials")


async def test_an_oversized_payload_is_refused_before_sending(
    keys: Keys, emulators: Emulators, client: PushClient
) -> None:
    big = PushMessage(data={"blob": "x" * 5000}, silent=True)
    for platform in Platform:
        outcome = await client.send(_targets(keys)[platform], big)
        assert outcome.verdict is Verdict.FAILED
        assert "limit" in outcome.reason
    assert emulators.apns.requests == 0
    assert emulators.fcm.requests == 0
    assert emulators.hms.requests == 0


@pytest.mark.parametrize(
    ("app_environment", "token_environment", "sandbox"),
    [
        (Environment.PRODUCTION, Environment.PRODUCTION, False),
        (Environment.PRODUCTION, Environment.DEVELOPMENT, True),
        (Environment.DEVELOPMENT, Environment.PRODUCTION, True),
    ],
)
async def test_apns_environment_picks_the_host(
    app_environment: Environment,
    token_environment: Environment,
    sandbox: bool,
    keys: Keys,
    emulators: Emulators,
) -> None:
    import dataclasses

    import trio

    from providers.h2pool import PoolConfig

    closed = trio.socket.socket()
    await closed.bind(("127.0.0.1", 0))
    nowhere = f"https://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    endpoints = dataclasses.replace(emulators.endpoints, apns_development=nowhere)
    async with trio.open_nursery() as nursery:
        push = PushClient(
            nursery, endpoints=endpoints, pool_config=PoolConfig(), ssl_context=keys.client_ssl()
        )
        target = Target(
            Platform.APNS, APNS_TOKEN, keys.apns_credentials(app_environment), token_environment
        )
        outcome = await push.send(target, WAKE_UP)
        await push.aclose()
    assert outcome.verdict is (Verdict.RETRY if sandbox else Verdict.SENT)
