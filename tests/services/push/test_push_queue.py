"""The durable push queue against the emulators over TLS: delivery on every platform,
retries with backoff within the attempt cap, outcomes recorded per job, jobs surviving
a restart, and the synchronous path's per-platform counts."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from providers.emulators.faults import Fault, FaultKind
from providers.message import Environment, Platform, PushMessage
from relay.config import Settings
from relay.registry import Services, build_services
from relay.services.push.queue import Delivery
from storage.db import Database
from storage.ids import now_us
from storage.repos import push_jobs
from tests.pushkit import (
    ALERT,
    APNS_TOKEN,
    Emulators,
    Keys,
    configure_app,
    delivery,
    running_push,
    with_emulators,
)
from tests.waiting import until

KEY = bytes(range(32))


@pytest.fixture
def settings(settings: Settings, emulators: Emulators, keys: Keys) -> Settings:
    return with_emulators(settings, emulators, keys, push_max_attempts=3)


async def _settled(services: Services, ids: list, states=("sent", "failed")) -> dict:  # type: ignore[no-untyped-def, type-arg]
    async def done() -> bool:
        statuses = await services.push.queue.status(ids)
        return len(statuses) == len(ids) and all(s.state in states for s in statuses.values())

    await until(done, seconds=10)
    return await services.push.queue.status(ids)


@pytest.mark.parametrize("platform", list(Platform))
async def test_a_queued_push_is_delivered_and_marked_sent(
    platform: Platform, services: Services, emulators: Emulators, keys: Keys
) -> None:
    app_id = await configure_app(services.push_apps, keys, "shop")
    async with running_push(services.push):
        [job] = await services.push.queue.enqueue(app_id, [delivery(platform)])
        statuses = await _settled(services, [job])
    assert statuses[job].state == "sent"
    assert statuses[job].attempts == 1
    emulator = {Platform.APNS: emulators.apns, Platform.FCM: emulators.fcm}.get(
        platform, emulators.hms
    )
    assert [r.token for r in emulator.received] == [delivery(platform).token]


async def test_a_rate_limited_push_is_retried_with_backoff_until_sent(
    services: Services, emulators: Emulators, keys: Keys
) -> None:
    app_id = await configure_app(services.push_apps, keys)
    emulators.fcm.faults.per_token["fcm-1"] = Fault(FaultKind.RATE_LIMITED, times=2)
    async with running_push(services.push):
        [job] = await services.push.queue.enqueue(app_id, [delivery(Platform.FCM)])
        statuses = await _settled(services, [job])
    assert (statuses[job].state, statuses[job].attempts) == ("sent", 3)
    assert services.push.stats.retried == 2


async def test_retry_after_is_honoured(
    services: Services, emulators: Emulators, keys: Keys
) -> None:
    app_id = await configure_app(services.push_apps, keys)
    emulators.apns.faults.per_token[APNS_TOKEN] = Fault(
        FaultKind.UNAVAILABLE, retry_after=1, times=1
    )
    async with running_push(services.push):
        started = trio.current_time()
        [job] = await services.push.queue.enqueue(app_id, [delivery(Platform.APNS)])
        statuses = await _settled(services, [job])
        elapsed = trio.current_time() - started
    assert statuses[job].state == "sent"
    # The policy alone would have retried after 10-20 ms; the provider asked for 1 s.
    assert elapsed >= 1.0


async def test_a_push_that_keeps_failing_gives_up_at_the_attempt_cap(
    services: Services, emulators: Emulators, keys: Keys
) -> None:
    app_id = await configure_app(services.push_apps, keys)
    emulators.hms.faults.per_token["hms-1"] = Fault(FaultKind.SERVER_ERROR)
    async with running_push(services.push):
        [job] = await services.push.queue.enqueue(app_id, [delivery(Platform.HMS)])
        statuses = await _settled(services, [job])
    assert statuses[job].state == "failed"
    assert statuses[job].attempts == 3
    assert statuses[job].reason == "gave up after 3 attempts: 81000001"


async def test_a_non_429_client_error_is_never_retried(
    services: Services, emulators: Emulators, keys: Keys
) -> None:
    app_id = await configure_app(services.push_apps, keys)
    await services.push_apps.set_apns(
        "relay",
        key_pem=keys.apns_credentials().key_pem,
        key_id="KEY1234567",
        team_id="TEAM123456",
        bundle_id="com.example.not-allowed",
    )
    async with running_push(services.push):
        [job] = await services.push.queue.enqueue(app_id, [delivery(Platform.APNS)])
        statuses = await _settled(services, [job])
    assert (statuses[job].state, statuses[job].attempts) == ("failed", 1)
    assert statuses[job].reason == "TopicDisallowed"
    assert emulators.apns.requests == 1


async def test_goaway_mid_flight_loses_no_push(
    services: Services, emulators: Emulators, keys: Keys
) -> None:
    app_id = await configure_app(services.push_apps, keys)
    tokens = [f"{index:02x}" * 32 for index in range(30)]
    emulators.apns.faults.per_token[tokens[10]] = Fault(FaultKind.GOAWAY, times=1)
    async with running_push(services.push):
        ids = await services.push.queue.enqueue(
            app_id, [delivery(Platform.APNS, token) for token in tokens]
        )
        statuses = await _settled(services, ids)
    assert {s.state for s in statuses.values()} == {"sent"}
    assert sorted(r.token for r in emulators.apns.received) == sorted(tokens)


async def test_a_stalled_provider_times_out_and_the_push_is_retried(
    services: Services, emulators: Emulators, keys: Keys, settings: Settings, db: Database
) -> None:
    import dataclasses

    from relay.registry import push_config

    config = dataclasses.replace(push_config(settings))
    config = dataclasses.replace(
        config, pool=dataclasses.replace(config.pool, response_timeout=0.3)
    )
    fast = build_services(settings, db, b"x" * 32, Path(settings.data_dir), push=config)
    app_id = await configure_app(fast.push_apps, keys)
    emulators.fcm.faults.per_token["fcm-1"] = Fault(FaultKind.STALL, seconds=3, times=1)
    async with running_push(fast.push):
        [job] = await fast.push.queue.enqueue(app_id, [delivery(Platform.FCM)])
        statuses = await _settled(fast, [job])
    assert (statuses[job].state, statuses[job].attempts) == ("sent", 2)


async def test_queued_jobs_survive_a_crash_and_are_all_delivered_after_restart(
    settings: Settings, db: Database, emulators: Emulators, keys: Keys, tmp_path: Path
) -> None:
    import dataclasses

    from relay.registry import push_config

    # Short leases, so that the crashed worker's jobs come back quickly.
    config = dataclasses.replace(push_config(settings), visibility_secs=1.5)
    first = build_services(settings, db, b"x" * 32, tmp_path, push_key=KEY, push=config)
    app_id = await configure_app(first.push_apps, keys)
    tokens = [f"crash-{index}" for index in range(40)]
    emulators.fcm.faults.by_rate.append((1.0, Fault(FaultKind.STALL, seconds=5)))
    ids: list = []  # type: ignore[type-arg]
    with trio.CancelScope() as crash:
        async with running_push(first.push):
            ids = await first.push.queue.enqueue(
                app_id, [delivery(Platform.FCM, t) for t in tokens]
            )

            async def some_in_flight() -> bool:
                return emulators.fcm.requests >= 5

            await until(some_in_flight)
            crash.cancel()  # the process dies with jobs leased and in flight
    leased = await db.read(lambda conn: push_jobs.status(conn, ids))
    assert all(status.state == "pending" for status in leased.values())
    assert len(leased) == len(tokens)

    emulators.fcm.faults.clear()
    second = build_services(settings, db, b"x" * 32, tmp_path, push_key=KEY, push=config)
    async with running_push(second.push):
        statuses = await _settled(second, ids)
    assert {s.state for s in statuses.values()} == {"sent"}
    assert {r.token for r in emulators.fcm.received} == set(tokens)


async def test_an_expired_job_fails_without_being_sent(
    services: Services, emulators: Emulators, keys: Keys
) -> None:
    app_id = await configure_app(services.push_apps, keys)
    async with running_push(services.push):
        [job] = await services.push.queue.enqueue(
            app_id, [delivery(Platform.FCM)], expires_at=now_us() - 1
        )
        statuses = await _settled(services, [job])
    assert (statuses[job].state, statuses[job].reason) == ("failed", "expired before delivery")
    assert emulators.fcm.received == []


async def test_the_synchronous_path_counts_per_platform(
    services: Services, emulators: Emulators, keys: Keys
) -> None:
    app_id = await configure_app(services.push_apps, keys)
    emulators.apns.faults.per_token["bb" * 32] = Fault(FaultKind.BAD_TOKEN)
    emulators.fcm.faults.per_token["fcm-busy"] = Fault(FaultKind.RATE_LIMITED, times=1)
    deliveries = [
        delivery(Platform.APNS),
        delivery(Platform.APNS, "bb" * 32),
        delivery(Platform.FCM),
        delivery(Platform.FCM, "fcm-busy"),
        delivery(Platform.HMS),
    ]
    async with running_push(services.push):
        counts = await services.push.sender.send_now(app_id, deliveries)
        apns, fcm, hms = counts[Platform.APNS], counts[Platform.FCM], counts[Platform.HMS]
        assert (apns.sent, apns.failed, apns.pending, apns.total) == (1, 1, 0, 2)
        assert (fcm.sent, fcm.failed, fcm.pending) == (1, 0, 1)
        assert (hms.sent, hms.total) == (1, 1)

        async def retried() -> bool:
            return [r.token for r in emulators.fcm.received].count("fcm-busy") == 1

        await until(retried)


async def test_a_platform_without_credentials_fails_clearly(
    services: Services, emulators: Emulators
) -> None:
    app = await services.push_apps.create("bare")
    async with running_push(services.push):
        [job] = await services.push.queue.enqueue(app.id, [delivery(Platform.FCM)])
        statuses = await _settled(services, [job])
    assert statuses[job].reason == "the app has no fcm credentials"


async def test_development_tokens_go_to_the_sandbox_host(
    services: Services, emulators: Emulators, keys: Keys
) -> None:
    app_id = await configure_app(services.push_apps, keys)
    delivery = Delivery(Platform.APNS, APNS_TOKEN, ALERT, Environment.DEVELOPMENT)
    async with running_push(services.push):
        [job] = await services.push.queue.enqueue(app_id, [delivery])
        statuses = await _settled(services, [job])
    assert statuses[job].state == "sent"


async def test_competing_workers_deliver_every_job_exactly_once(
    settings: Settings, db: Database, emulators: Emulators, keys: Keys, tmp_path: Path
) -> None:
    workers = [build_services(settings, db, b"x" * 32, tmp_path, push_key=KEY) for _ in range(3)]
    app_id = await configure_app(workers[0].push_apps, keys)
    tokens = [f"compete-{index}" for index in range(150)]
    ids = await workers[0].push.queue.enqueue(app_id, [delivery(Platform.FCM, t) for t in tokens])
    async with (
        running_push(workers[0].push),
        running_push(workers[1].push),
        running_push(workers[2].push),
    ):
        statuses = await _settled(workers[0], ids)
    assert {s.state for s in statuses.values()} == {"sent"}
    assert sorted(r.token for r in emulators.fcm.received) == sorted(tokens)
    assert sum(w.push.stats.sent for w in workers) == len(tokens)


async def test_the_size_limit_applies_to_the_encrypted_payload(
    services: Services, emulators: Emulators, keys: Keys
) -> None:
    app_id = await configure_app(services.push_apps, keys)
    # 3100 bytes of data fit FCM's 4096; base64 of the ciphertext (4/3 + 40 bytes) does not.
    message = PushMessage(data={"blob": "x" * 3100}, silent=True)
    plain = Delivery(Platform.FCM, "plain", message)
    sealed = Delivery(Platform.FCM, "sealed", message, push_key=bytes(32))
    async with running_push(services.push):
        counts = await services.push.sender.send_now(app_id, [plain, sealed])
    assert (counts[Platform.FCM].sent, counts[Platform.FCM].failed) == (1, 1)
    assert [r.token for r in emulators.fcm.received] == ["plain"]


async def test_a_graceful_stop_finishes_and_records_pushes_in_flight(
    services: Services, emulators: Emulators, keys: Keys
) -> None:
    app_id = await configure_app(services.push_apps, keys)
    emulators.fcm.faults.by_rate.append((1.0, Fault(FaultKind.STALL, seconds=0.5)))
    tokens = [f"inflight-{index}" for index in range(5)]
    async with running_push(services.push) as stopping:
        ids = await services.push.queue.enqueue(app_id, [delivery(Platform.FCM, t) for t in tokens])

        async def all_in_flight() -> bool:
            return emulators.fcm.requests >= 6  # the token request and five sends

        await until(all_in_flight)
        stopping.set()
    statuses = await services.push.queue.status(ids)
    assert {s.state for s in statuses.values()} == {"sent"}


async def test_an_unexpected_error_in_a_delivery_is_retried_not_fatal(
    services: Services, emulators: Emulators, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_id = await configure_app(services.push_apps, keys)
    real = services.push_apps.credentials
    calls: list[object] = []

    async def flaky(app: object) -> object:
        calls.append(app)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return await real(app)  # type: ignore[arg-type]

    monkeypatch.setattr(services.push_apps, "credentials", flaky)
    async with running_push(services.push):
        [job] = await services.push.queue.enqueue(app_id, [delivery(Platform.FCM)])
        statuses = await _settled(services, [job])
    assert (statuses[job].state, statuses[job].attempts) == ("sent", 2)
