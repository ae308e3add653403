"""The push core's decision table, row by row as the README's outcome table states it:
a provider's raw answer, classified by the provider module, then decided."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from providers import apns, fcm, hms
from providers.h2pool.connection import Response
from providers.message import Outcome, Verdict
from relay.services.push.outcomes import (
    Decision,
    Effect,
    OutcomeWarnings,
    PushStats,
    decide,
    refused,
)
from storage.repos.push_jobs import JobState
from storage.repos.push_tokens import Removal

TOKEN = "device-token"
REGISTERED_BEFORE = 1_700_000_000_000_000  # µs: the job's (or the registration's) time


def _answer(status: int, body: object = None, headers: tuple[tuple[bytes, bytes], ...] = ()):
    raw = b"" if body is None else json.dumps(body).encode()
    return Response(status, list(headers), raw)


def _apns(status: int, reason: str | None = None, timestamp: int | None = None) -> Outcome:
    body: dict[str, object] | None = None
    if reason is not None:
        body = {"reason": reason} | ({"timestamp": timestamp} if timestamp else {})
    return apns.classify(_answer(status, body, ((b"apns-id", b"id-1"),)))


def _fcm(status: int, error: dict[str, object] | None = None) -> Outcome:
    body = {"name": "projects/p/messages/1"} if error is None else {"error": error}
    return fcm.classify(_answer(status, body))


def _fcm_error(code: str, status: str = "INVALID_ARGUMENT", field: str | None = None):
    details: list[dict[str, object]] = [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
    ]
    if field is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field}],
            }
        )
    return {"status": status, "details": details}


def _hms(status: int, code: str, msg: str = "") -> Outcome:
    return hms.classify(_answer(status, {"code": code, "msg": msg, "requestId": "r"}), TOKEN)


def _fcm_quota() -> Outcome:
    return _fcm(429, _fcm_error("QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED"))


def _network() -> Outcome:
    # What the client reports for a refused connection, a timeout or a GOAWAY.
    return Outcome(Verdict.RETRY, "connection refused")


SENT = (JobState.SENT, Effect.SENT)
FAILED = (JobState.FAILED, Effect.FAILED)
RETRIED = (JobState.PENDING, Effect.RETRIED)
REMOVED = (JobState.FAILED, Effect.REMOVED)

# (provider answer, job state and effect, token removal "before" (None: kept))
ROWS: list[tuple[str, Callable[[], Outcome], tuple[JobState, Effect], int | None]] = [
    ("APNs 200", lambda: _apns(200), SENT, None),
    ("FCM 200", lambda: _fcm(200), SENT, None),
    ("HMS 80000000", lambda: _hms(200, hms.SUCCESS), SENT, None),
    ("APNs 429", lambda: _apns(429, "TooManyRequests"), RETRIED, None),
    ("APNs 503", lambda: _apns(503, "ServiceUnavailable"), RETRIED, None),
    ("FCM 500", lambda: _fcm(500, {"status": "INTERNAL"}), RETRIED, None),
    (
        "FCM 429",
        lambda: _fcm(429, _fcm_error("QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED")),
        RETRIED,
        None,
    ),
    ("HMS 503", lambda: _hms(503, "81000001"), RETRIED, None),
    ("network error", _network, RETRIED, None),
    (
        "APNs 410 Unregistered with timestamp",
        lambda: _apns(410, "Unregistered", timestamp=1_600_000_000_000),
        REMOVED,
        1_600_000_000_000_000,
    ),
    ("APNs 410 without timestamp", lambda: _apns(410, "Unregistered"), REMOVED, REGISTERED_BEFORE),
    (
        "FCM UNREGISTERED",
        lambda: _fcm(404, _fcm_error("UNREGISTERED", "NOT_FOUND")),
        REMOVED,
        REGISTERED_BEFORE,
    ),
    (
        "FCM INVALID_ARGUMENT on message.token",
        lambda: _fcm(400, _fcm_error("INVALID_ARGUMENT", field="message.token")),
        REMOVED,
        REGISTERED_BEFORE,
    ),
    ("HMS 80300007", lambda: _hms(200, hms.ALL_INVALID), REMOVED, REGISTERED_BEFORE),
    (
        "HMS partial failure naming the token",
        lambda: _hms(200, hms.PARTIAL, json.dumps({"illegal_tokens": [TOKEN]})),
        REMOVED,
        REGISTERED_BEFORE,
    ),
    ("APNs BadDeviceToken", lambda: _apns(400, "BadDeviceToken"), REMOVED, REGISTERED_BEFORE),
    (
        "APNs DeviceTokenNotForTopic",
        lambda: _apns(400, "DeviceTokenNotForTopic"),
        REMOVED,
        REGISTERED_BEFORE,
    ),
    (
        "FCM SENDER_ID_MISMATCH",
        lambda: _fcm(403, _fcm_error("SENDER_ID_MISMATCH", "PERMISSION_DENIED")),
        REMOVED,
        REGISTERED_BEFORE,
    ),
    ("APNs other 4xx", lambda: _apns(400, "BadTopic"), FAILED, None),
    ("APNs InvalidProviderToken", lambda: _apns(403, "InvalidProviderToken"), FAILED, None),
    ("APNs ExpiredProviderToken", lambda: _apns(403, "ExpiredProviderToken"), FAILED, None),
    ("FCM other 4xx", lambda: _fcm(400, _fcm_error("INVALID_ARGUMENT")), FAILED, None),
    ("FCM OAuth refused", lambda: _fcm(401, {"status": "UNAUTHENTICATED"}), FAILED, None),
    ("HMS other error", lambda: _hms(400, "80100003"), FAILED, None),
]


@pytest.mark.parametrize(("answer", "outcome", "expected", "removed_before"), ROWS)
def test_each_provider_answer_decides_job_and_token(
    answer: str,
    outcome: Callable[[], Outcome],
    expected: tuple[JobState, Effect],
    removed_before: int | None,
) -> None:
    decision = decide(
        outcome(),
        attempt=1,
        max_attempts=5,
        token=TOKEN,
        registered_before=REGISTERED_BEFORE,
        removal_allowed=True,
    )
    assert (decision.state, decision.effect) == expected, answer
    expected_removal = None if removed_before is None else Removal(TOKEN, removed_before)
    assert decision.removal == expected_removal, answer


def _decided(answer: str, *, attempt: int, removal_allowed: bool) -> tuple[Outcome, Decision]:
    outcome = next(row[1] for row in ROWS if row[0] == answer)()
    decision = decide(
        outcome,
        attempt=attempt,
        max_attempts=5,
        token=TOKEN,
        registered_before=REGISTERED_BEFORE,
        removal_allowed=removal_allowed,
    )
    return outcome, decision


@pytest.mark.parametrize("answer", [row[0] for row in ROWS if row[2] == RETRIED])
def test_a_transient_failure_on_the_last_attempt_gives_up(answer: str) -> None:
    outcome, decision = _decided(answer, attempt=5, removal_allowed=True)
    assert decision.state is JobState.FAILED
    assert decision.effect is Effect.GAVE_UP
    assert decision.reason == f"gave up after 5 attempts: {outcome.reason}"


def test_a_retry_carries_the_providers_retry_after() -> None:
    outcome = apns.classify(
        _answer(429, {"reason": "TooManyRequests"}, ((b"retry-after", b"120"),))
    )
    decision = decide(
        outcome, attempt=1, max_attempts=5, token=TOKEN, registered_before=0, removal_allowed=True
    )
    assert decision.retry_after == 120.0
    assert decision.reason == "retrying: TooManyRequests"


@pytest.mark.parametrize("answer", [row[0] for row in ROWS if row[2] == REMOVED])
def test_an_open_breaker_keeps_the_token(answer: str) -> None:
    outcome, decision = _decided(answer, attempt=1, removal_allowed=False)
    assert decision.state is JobState.FAILED
    assert decision.effect is Effect.REMOVAL_HELD
    assert decision.removal is None
    assert decision.reason == f"{outcome.reason} (token kept: removal breaker open)"


def test_stats_count_each_effect() -> None:
    stats = PushStats()
    for effect in Effect:
        stats.count(effect)
    stats.count(refused("no token").effect)
    # GAVE_UP, FAILED, REMOVED and REMOVAL_HELD are failures; REFUSED never reached one.
    assert (stats.sent, stats.retried, stats.failed) == (1, 1, 4)
    assert (stats.removals, stats.removals_held) == (1, 1)


def test_failures_are_warned_once_per_interval_with_their_count() -> None:
    warnings = OutcomeWarnings(interval=60)
    refused_ = Outcome(Verdict.FAILED, "credentials: the key id is not known", 403)
    first = warnings.note("app-1", "apns", refused_, Effect.FAILED, now=0)
    assert first == (
        "push app app-1 via apns: 1 failed (credentials: the key id is not known) "
        "since the last report"
    )
    assert warnings.note("app-1", "apns", refused_, Effect.FAILED, now=10) is None
    assert warnings.note("app-1", "apns", refused_, Effect.FAILED, now=20) is None
    # Another app, provider or kind of failure is its own line.
    assert warnings.note("app-2", "apns", refused_, Effect.FAILED, now=20) is not None
    later = warnings.note("app-1", "apns", refused_, Effect.FAILED, now=61)
    assert later is not None
    assert ": 3 failed (" in later  # the two held back, and this one


def test_transport_failures_are_warned_even_while_retried_and_sends_never() -> None:
    warnings = OutcomeWarnings(interval=60)
    broken = Outcome(
        Verdict.RETRY, "transport: connecting to fcm failed: certificate verify failed"
    )
    line = warnings.note("app-1", "fcm", broken, Effect.RETRIED, now=0)
    assert line is not None
    assert "certificate verify failed" in line
    sent = Outcome(Verdict.SENT, "sent", 200)
    assert warnings.note("app-1", "fcm", sent, Effect.SENT, now=0) is None
    busy = Outcome(Verdict.RETRY, "503 Service Unavailable", 503)
    assert warnings.note("app-1", "fcm", busy, Effect.RETRIED, now=0) is None
    gave_up = Outcome(Verdict.RETRY, "503 Service Unavailable", 503)
    assert warnings.note("app-1", "fcm", gave_up, Effect.GAVE_UP, now=0) is not None
