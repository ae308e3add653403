"""``GET /metrics`` on the management port of a real ``relay serve``: after real traffic
(accounts, sends, a gateway session with acks and a take-over, a wake-up push through
the FCM emulator, refused logins) the families moved by exactly what was done; with two
worker processes the counts are summed over both; no label carries an id or a token."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from relay.api.routes import TABLE
from relay.client import DeviceKeys, Outgoing, connect_gateway
from storage.db import Database
from tests.e2e.process import Serving, emulator_process, relay_process
from tests.e2e.pushing import configure_wakeup_app, push_settings, received_by
from tests.factories import new_device
from tests.messaging import receive_envelopes
from tests.waiting import until


async def scrape(server: Serving) -> list[Sample]:
    """Every sample ``/metrics`` reports now."""
    async with httpx.AsyncClient(base_url=server.management) as management:
        response = await management.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return [
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 if none)."""
    return sum(
        sample.value
        for sample in samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def test_metrics_move_with_real_traffic(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    with emulator_process("fcm", tmp_path / "fcm") as emulator:
        configure_wakeup_app(tmp_path, database_url, emulator)
        settings = {
            **push_settings(emulator),
            "rate_limit_auth_per_second": "1",
            "rate_limit_auth_burst": "8",
        }
        with relay_process(tmp_path, database_url, **settings) as server:
            before = await scrape(server)
            async with httpx.AsyncClient(base_url=server.api, timeout=30) as http:
                alice, bob, carol = [await new_device(http) for _ in range(3)]
                await carol.client.put_push_token("token-of-carols-phone")
                async with connect_gateway(alice.client) as gateway:
                    sent = [Outgoing(alice.id, b"%d" % index) for index in range(3)]
                    assert await bob.client.send_messages(sent) == []
                    batches = await receive_envelopes(gateway, 3, seconds=10)
                    await gateway.ack([e.id for batch in batches for e in batch])
                    # Carol is offline: her message wakes her phone through FCM.
                    assert await bob.client.send_messages([Outgoing(carol.id, b"x")]) == []

                    async def woken() -> bool:
                        return len(await received_by(emulator)) == 1

                    await until(woken, seconds=20)
                    fresh = DeviceKeys.generate()
                    await alice.client.upload_keys(fresh.upload_json(include_identity=True))
                    await trio.sleep(1)  # the ack batch is flushed, the session closed
                statuses = [
                    (
                        await http.post(
                            "/v1/sessions", json={"username": "nobody", "password": "wrong"}
                        )
                    ).status_code
                    for _ in range(12)
                ]

            async def sampled() -> bool:
                # Gauges are sampled every 5 s; the push job's outcome is recorded in a
                # batch after the provider answered.
                samples = await scrape(server)
                return (
                    value(samples, "relay_provider_connections", provider="fcm") >= 1
                    and value(samples, "relay_push_jobs_total", outcome="sent") >= 1
                )

            await until(sampled, seconds=20)
            after = await scrape(server)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("relay_http_requests_total", method="POST", route="/v1/messages") == 2
    assert moved(
        "relay_http_requests_total", method="POST", route="/v1/sessions", status="429"
    ) == statuses.count(429)
    assert statuses.count(429) >= 1
    assert moved("relay_rate_limited_requests_total", tier="auth") == statuses.count(429)
    assert moved("relay_http_request_duration_seconds_count", route="/v1/messages") == 2
    assert moved("relay_messages_queued_total") == 4
    assert moved("relay_messages_deleted_total") == 3
    assert moved("relay_gateway_envelopes_sent_total") == 3
    assert moved("relay_gateway_frames_sent_total") >= 1
    assert moved("relay_gateway_acks_received_total") == 3
    assert moved("relay_gateway_takeovers_total") == 1
    assert value(after, "relay_gateway_sessions") == 0
    assert moved("relay_push_jobs_total", provider="fcm", outcome="sent", reason="sent") == 1
    assert value(after, "relay_provider_connections", provider="fcm") >= 1
    assert any(sample.name == "relay_push_queue_depth" for sample in after)
    assert moved("relay_db_write_batch_size_count") >= 1
    assert moved("relay_db_wait_seconds_count") >= 1
    # Labels are bounded: route templates, not paths; no ids, no tokens.
    identifiers = {str(d.id) for d in (alice, bob, carol)} | {"token-of-carols-phone"}
    for sample in after:
        for label in sample.labels.values():
            assert not any(identifier in label for identifier in identifiers), sample
    routes = {s.labels["route"] for s in after if s.name == "relay_http_requests_total"}
    assert routes <= {route.path for route in TABLE} | {"unrouted"}


async def test_two_workers_report_one_sum(tmp_path: Path, database_url: str) -> None:
    with relay_process(tmp_path, database_url, server_workers="2") as server:
        before = await scrape(server)
        for _ in range(40):
            # A connection each, so that both workers accept some.
            async with httpx.AsyncClient(base_url=server.api, timeout=30) as http:
                response = await http.get(f"/v1/users/{uuid.uuid4()}")
                assert response.status_code == 401
        after = await scrape(server)
    labels = {"method": "GET", "route": "/v1/users/{userId}", "status": "401"}
    assert (
        value(after, "relay_http_requests_total", **labels)
        - value(before, "relay_http_requests_total", **labels)
        == 40
    )
