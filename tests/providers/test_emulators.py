"""The emulators check what the real services check, and obey their control endpoints.
Requests here are made with httpx over HTTP/2 and TLS, independently of our own client."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from providers import fcm, hms, jose
from tests.pushkit import APNS_TOKEN, BUNDLE_ID, KEY_ID, TEAM_ID, Emulators, Keys


@pytest.fixture
async def h2(keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(http2=True, verify=keys.client_ssl()) as client:
        yield client


def _apns_jwt(keys: Keys, *, iat: int | None = None, kid: str = KEY_ID, key=None) -> str:  # type: ignore[no-untyped-def]
    return jose.sign(
        {"kid": kid}, {"iss": TEAM_ID, "iat": iat or int(time.time())}, key or keys.apns_key
    )


async def _apns(
    h2: httpx.AsyncClient, emulators: Emulators, token: str, **headers: str
) -> httpx.Response:
    base = {"apns-topic": BUNDLE_ID}
    base.update({k.replace("_", "-"): v for k, v in headers.items()})
    return await h2.post(
        f"{emulators.endpoints.apns_production}/3/device/{token}",
        headers=base,
        content=b'{"aps":{"alert":"hi"}}',
    )


async def test_apns_accepts_a_valid_request_over_http2(
    h2: httpx.AsyncClient, emulators: Emulators, keys: Keys
) -> None:
    response = await _apns(h2, emulators, APNS_TOKEN, authorization=f"bearer {_apns_jwt(keys)}")
    assert response.status_code == 200
    assert response.http_version == "HTTP/2"
    assert response.headers["apns-id"]


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("no-auth", 403, "MissingProviderToken"),
        ("unknown-kid", 403, "InvalidProviderToken"),
        ("other-key", 403, "InvalidProviderToken"),
        ("old-token", 403, "ExpiredProviderToken"),
        ("no-topic", 400, "MissingTopic"),
        ("bad-topic", 400, "TopicDisallowed"),
        ("bad-token", 400, "BadDeviceToken"),
        ("bad-priority", 400, "BadPriority"),
        ("bad-type", 400, "InvalidPushType"),
    ],
)
async def test_apns_refuses_what_apple_refuses(
    case: str, status: int, reason: str, h2: httpx.AsyncClient, emulators: Emulators, keys: Keys
) -> None:
    headers: dict[str, str] = {"authorization": f"bearer {_apns_jwt(keys)}"}
    token = APNS_TOKEN
    if case == "no-auth":
        headers = {}
    elif case == "unknown-kid":
        headers["authorization"] = f"bearer {_apns_jwt(keys, kid='NOPE000000')}"
    elif case == "other-key":
        other = ec.generate_private_key(ec.SECP256R1())
        headers["authorization"] = f"bearer {_apns_jwt(keys, key=other)}"
    elif case == "old-token":
        headers["authorization"] = f"bearer {_apns_jwt(keys, iat=int(time.time()) - 3700)}"
    elif case == "bad-token":
        token = "not-hex"
    elif case == "bad-priority":
        headers["apns-priority"] = "7"
    elif case == "bad-type":
        headers["apns-push-type"] = "shout"
    url = f"{emulators.endpoints.apns_production}/3/device/{token}"
    if case != "no-topic":
        headers["apns-topic"] = "com.other.app" if case == "bad-topic" else BUNDLE_ID
    response = await h2.post(url, headers=headers, content=b"{}")
    assert (response.status_code, response.json()["reason"]) == (status, reason)


async def test_apns_refuses_oversized_payloads(
    h2: httpx.AsyncClient, emulators: Emulators, keys: Keys
) -> None:
    url = f"{emulators.endpoints.apns_production}/3/device/{APNS_TOKEN}"
    headers = {"authorization": f"bearer {_apns_jwt(keys)}", "apns-topic": BUNDLE_ID}
    big = json.dumps({"aps": {}, "x": "y" * 4100}).encode()
    assert (await h2.post(url, headers=headers, content=big)).status_code == 413
    voip = {**headers, "apns-push-type": "voip", "apns-topic": BUNDLE_ID + ".voip"}
    assert (await h2.post(url, headers=voip, content=big)).status_code == 200


async def test_the_fcm_token_endpoint_checks_the_assertion(
    h2: httpx.AsyncClient, emulators: Emulators, keys: Keys
) -> None:
    account = keys.service_account()
    url = emulators.endpoints.fcm_token
    form = {"content-type": "application/x-www-form-urlencoded"}
    good = fcm.token_request(account, token_url=url, now=int(time.time()))
    response = await h2.post(url, content=good, headers=form)
    assert response.status_code == 200
    token = response.json()["access_token"]
    wrong_audience = fcm.token_request(account, token_url="https://elsewhere", now=int(time.time()))
    assert (await h2.post(url, content=wrong_audience, headers=form)).status_code == 400
    expired = fcm.token_request(account, token_url=url, now=int(time.time()) - 7200)
    assert (await h2.post(url, content=expired, headers=form)).status_code == 400

    send = f"{emulators.endpoints.fcm}/v1/projects/{account.project_id}/messages:send"
    message = {"message": {"token": "t", "data": {"a": "b"}}}
    unauthenticated = await h2.post(send, json=message)
    assert unauthenticated.json()["error"]["status"] == "UNAUTHENTICATED"
    bearer = {"authorization": f"Bearer {token}"}
    assert (await h2.post(send, json=message, headers=bearer)).status_code == 200
    other_project = send.replace(account.project_id, "someone-else")
    assert (await h2.post(other_project, json=message, headers=bearer)).status_code == 403
    not_string = {"message": {"token": "t", "data": {"a": 1}}}
    refused = await h2.post(send, json=not_string, headers=bearer)
    assert refused.json()["error"]["status"] == "INVALID_ARGUMENT"


async def test_the_hms_token_endpoint_checks_the_client(
    h2: httpx.AsyncClient, emulators: Emulators, keys: Keys
) -> None:
    credentials = keys.hms_credentials()
    url = emulators.endpoints.hms_token
    form = {"content-type": "application/x-www-form-urlencoded"}
    response = await h2.post(url, content=hms.token_request(credentials), headers=form)
    assert response.status_code == 200
    wrong = hms.HmsCredentials(credentials.app_id, "wrong")
    assert (await h2.post(url, content=hms.token_request(wrong), headers=form)).status_code == 400
    send = f"{emulators.endpoints.hms}/v1/{credentials.app_id}/messages:send"
    bearer = {"authorization": f"Bearer {response.json()['access_token']}"}
    too_many = {"message": {"token": [f"t{i}" for i in range(1001)], "data": "{}"}}
    assert (await h2.post(send, json=too_many, headers=bearer)).json()["code"] == "80300010"
    ok = {"message": {"token": ["a", "b"], "data": "{}"}}
    assert (await h2.post(send, json=ok, headers=bearer)).json()["code"] == "80000000"


async def test_control_endpoints_set_faults_and_report_what_was_received(
    h2: httpx.AsyncClient, emulators: Emulators, keys: Keys
) -> None:
    control = f"{emulators.endpoints.apns_production}/_emulator"
    faults = {
        "per_token": {APNS_TOKEN: {"kind": "unregistered", "timestamp_ms": 1234}},
        "by_rate": [[1.0, {"kind": "unavailable", "retry_after": 5, "times": 1}]],
    }
    assert (await h2.post(f"{control}/faults", json=faults)).status_code == 200
    auth = f"bearer {_apns_jwt(keys)}"
    gone = await _apns(h2, emulators, APNS_TOKEN, authorization=auth)
    assert (gone.status_code, gone.json()) == (410, {"reason": "Unregistered", "timestamp": 1234})
    other = "cd" * 32
    busy = await _apns(h2, emulators, other, authorization=auth)
    assert (busy.status_code, busy.headers["retry-after"]) == (503, "5")
    assert (await _apns(h2, emulators, other, authorization=auth)).status_code == 200
    received = (await h2.get(f"{control}/received")).json()
    assert [item["token"] for item in received] == [other]
    assert (await h2.post(f"{control}/reset")).status_code == 200
    assert (await h2.get(f"{control}/received")).json() == []
    assert (await _apns(h2, emulators, APNS_TOKEN, authorization=auth)).status_code == 200
    assert (await h2.post(f"{control}/faults", content=b"nope")).status_code == 400
    assert (
        await h2.post(f"{control}/faults", json={"per_token": {"x": {"kind": "bogus"}}})
    ).status_code == 400
    assert (await h2.get(f"{control}/nothing")).status_code == 404


async def test_a_report_larger_than_the_flow_control_window_arrives_whole(
    h2: httpx.AsyncClient, emulators: Emulators, keys: Keys
) -> None:
    # Each record carries its request headers (a JWT among them): 200 records are far
    # beyond HTTP/2's initial 64 KiB window, which the emulator must wait to reopen.
    auth = f"bearer {_apns_jwt(keys)}"
    tokens = [f"{index:064x}" for index in range(200)]
    for token in tokens:
        assert (await _apns(h2, emulators, token, authorization=auth)).status_code == 200
    response = await h2.get(f"{emulators.endpoints.apns_production}/_emulator/received")
    assert len(response.content) > 65535
    received = response.json()
    assert [item["token"] for item in received] == tokens
    assert {item["peer"] for item in received} == {"127.0.0.1"}
