"""The WebSocket gateway (obscura-contract §2.13, §3): handshake, delivery, acks, events."""

from __future__ import annotations

import time
import uuid
from functools import partial

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed

from relay import wire
from relay.client import (
    DeviceKeys,
    Envelope,
    GatewayConnection,
    Outgoing,
    PreKeyStatus,
    connect_gateway,
)
from relay.config import Settings
from relay.process.server import Listening, run_server
from relay.registry import Services
from storage.db import Database
from tests.factories import Device, new_account, new_device
from tests.messaging import (
    device_and_sender,
    nothing_more,
    pending,
    pending_is,
    receive_envelopes,
    send_numbered,
)
from tests.rawws import AcceptConnection, BytesMessage, CloseConnection, Ping, Pong, RawWebSocket
from tests.waiting import until


async def _sessions_ended(services: Services) -> None:
    """Wait until every session has finished (acks flushed), whatever the client saw."""

    async def none_open() -> bool:
        return services.gateway.stats.sessions_open == 0

    await until(none_open)


async def _envelopes(gateway: GatewayConnection, count: int) -> list[list[Envelope]]:
    """Receive batches until ``count`` envelopes have arrived; nothing else may come."""
    return await receive_envelopes(gateway, count, seconds=10, statuses_allowed=False)


# --- tickets and the handshake ------------------------------------------------------


async def test_ticket_is_a_uuid_for_device_tokens_only(http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    response = await http.post("/v1/gateway/ticket", headers=device.headers)
    assert response.status_code == 201
    assert uuid.UUID(response.json()["ticket"]).version == 4
    account = await new_account(http)
    user_scoped = await http.post("/v1/gateway/ticket", headers=account.auth_headers)
    assert user_scoped.status_code == 403
    assert (await http.post("/v1/gateway/ticket")).status_code == 401


async def _refused(relay: Listening, ticket: str | None) -> tuple[int, dict[bytes, bytes], bytes]:
    target = "/v1/gateway" if ticket is None else f"/v1/gateway?ticket={ticket}"
    return await RawWebSocket.refusal(relay.api_url, target)


async def test_missing_ticket_is_400(relay: Listening) -> None:
    status, headers, body = await _refused(relay, None)
    assert status == 400
    assert headers[b"content-type"].startswith(b"text/plain")
    assert b"ticket" in body


async def test_bad_used_and_expired_tickets_are_401(
    relay: Listening, http: httpx.AsyncClient
) -> None:
    assert (await _refused(relay, "nope"))[0] == 401
    device = await new_device(http)
    ticket = await device.client.gateway_ticket()
    raw = await RawWebSocket.connect(relay.api_url, ticket)
    await raw.aclose()
    status, headers, body = await _refused(relay, ticket)
    assert status == 401
    assert body == b""
    assert b"x-request-id" in headers


@pytest.mark.settings(ws_ticket_ttl_secs=1)
async def test_tickets_expire(relay: Listening, http: httpx.AsyncClient) -> None:
    device = await new_device(http)
    ticket = await device.client.gateway_ticket()
    await trio.sleep(1.1)
    assert (await _refused(relay, ticket))[0] == 401


async def test_plain_http_on_the_gateway_path(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/gateway", params={"ticket": "x"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert (await http.post("/v1/gateway")).status_code == 405


async def test_the_upgrade_carries_the_request_id(
    relay: Listening, http: httpx.AsyncClient
) -> None:
    device = await new_device(http)
    target = f"/v1/gateway?ticket={await device.client.gateway_ticket()}"
    raw, event = await RawWebSocket.open(
        relay.api_url, target, headers=[(b"x-request-id", b"trace-7")]
    )
    await raw.aclose()
    assert isinstance(event, AcceptConnection)
    assert (b"x-request-id", b"trace-7") in event.extra_headers


async def test_refusals_carry_the_request_id(relay: Listening) -> None:
    _, headers, _ = await RawWebSocket.refusal(
        relay.api_url, "/v1/gateway?ticket=nope", headers=[(b"x-request-id", b"abc-123")]
    )
    assert headers[b"x-request-id"] == b"abc-123"
    status, headers, _ = await RawWebSocket.refusal(relay.api_url, "/v1/gateway")
    assert status == 400
    assert len(headers[b"x-request-id"].split(b"-")) == 5  # a generated UUID


async def test_an_upgrade_after_another_request_needs_its_own_connection(
    relay: Listening, http: httpx.AsyncClient
) -> None:
    device = await new_device(http, one_time_pre_keys=20)
    ticket = await device.client.gateway_ticket()
    earlier = b"GET /openapi.yaml HTTP/1.1\r\nHost: relay\r\n\r\n"
    status, _, body = await RawWebSocket.refusal(
        relay.api_url, f"/v1/gateway?ticket={ticket}", before=earlier
    )
    assert status == 400
    assert b"connection of its own" in body


async def test_websocket_on_other_paths_is_404(relay: Listening) -> None:
    assert (await RawWebSocket.refusal(relay.api_url, "/v1/devices"))[0] == 404


@pytest.mark.settings(rate_limit_per_second=1, rate_limit_burst=1)
async def test_handshakes_are_rate_limited(relay: Listening) -> None:
    await _refused(relay, "nope")  # spends the burst
    status, headers, _ = await _refused(relay, "nope")
    assert status == 429
    assert headers[b"retry-after"] == b"1"


# --- session start ---------------------------------------------------------------------


async def test_low_pre_keys_are_reported_first(http: httpx.AsyncClient) -> None:
    device = await new_device(http, one_time_pre_keys=0)
    sender = await new_device(http)
    await send_numbered(sender, device, 1)
    async with connect_gateway(device.client) as gateway:
        assert await gateway.next_event() == PreKeyStatus(0, 20)
        assert len(await gateway.next_event()) == 1  # type: ignore[arg-type]


async def test_enough_pre_keys_means_no_status_frame(http: httpx.AsyncClient) -> None:
    device, _sender = await device_and_sender(http, 1)
    async with connect_gateway(device.client) as gateway:
        assert isinstance(await gateway.next_event(), list)


# --- delivery --------------------------------------------------------------------------


async def test_backlog_arrives_in_pages(http: httpx.AsyncClient) -> None:
    device, sender = await device_and_sender(http, 125)
    async with connect_gateway(device.client) as gateway:
        batches = await _envelopes(gateway, 125)
    assert [len(b) for b in batches] == [50, 50, 25]
    received = [e.message for b in batches for e in b]
    assert received == [f"{i:08d}".encode() for i in range(125)]
    first = batches[0][0]
    assert first.sender_id == sender.user_id
    assert first.sender_device_id == sender.id
    assert first.id.version == 7


async def test_envelope_timestamp_is_the_server_receive_time(http: httpx.AsyncClient) -> None:
    device, sender = await device_and_sender(http)
    wall_before = int(time.time() * 1000)
    await send_numbered(sender, device, 3)
    wall_after = int(time.time() * 1000)
    async with connect_gateway(device.client) as gateway:
        batch = (await _envelopes(gateway, 3))[0]
    assert len({e.timestamp_ms for e in batch}) == 1  # one POST, one timestamp
    assert wall_before - 1 <= batch[0].timestamp_ms <= wall_after + 1


@pytest.mark.settings(ws_max_batch_bytes=200)
async def test_frames_stay_under_the_byte_limit(http: httpx.AsyncClient) -> None:
    device, sender = await device_and_sender(
        http, 4, width=60
    )  # ~120-byte envelopes: one per frame
    await sender.client.send_messages([Outgoing(device.id, b"x" * 500)])  # alone, not dropped
    async with connect_gateway(device.client) as gateway:
        batches = await _envelopes(gateway, 5)
    assert [len(b) for b in batches] == [1, 1, 1, 1, 1]
    assert batches[-1][0].message == b"x" * 500


async def test_live_delivery(http: httpx.AsyncClient) -> None:
    device, sender = await device_and_sender(http)
    async with connect_gateway(device.client) as gateway:
        await send_numbered(sender, device, 1)
        assert [e.message for e in (await _envelopes(gateway, 1))[0]] == [b"00000000"]
        await send_numbered(sender, device, 2)
        assert sum(len(b) for b in await _envelopes(gateway, 2)) == 2


@pytest.mark.settings(ws_outbound_buffer_size=10)
async def test_a_burst_of_wake_ups_still_delivers_everything(http: httpx.AsyncClient) -> None:
    device, sender = await device_and_sender(http)
    async with connect_gateway(device.client) as gateway, trio.open_nursery() as nursery:

        async def burst() -> None:
            for i in range(100):  # 100 requests: 100 wake-ups, merged while busy
                await sender.client.send_messages([Outgoing(device.id, f"{i:03d}".encode())])

        nursery.start_soon(burst)
        batches = await _envelopes(gateway, 100)
    received = [e.message for b in batches for e in b]
    assert received == [f"{i:03d}".encode() for i in range(100)]


async def test_other_devices_of_the_user_get_nothing(http: httpx.AsyncClient) -> None:
    first = await new_device(http, one_time_pre_keys=20)
    second = await new_device(http, one_time_pre_keys=20, account=first.client)
    sender = await new_device(http)
    async with connect_gateway(first.client) as gateway:
        await send_numbered(sender, second, 1)
        await send_numbered(sender, first, 1)
        batch = (await _envelopes(gateway, 1))[0]
        assert [e.message for e in batch] == [b"00000000"]
        await nothing_more(gateway, 0.3)


async def test_unacknowledged_messages_come_back_only_on_a_new_connection(
    http: httpx.AsyncClient,
) -> None:
    device, sender = await device_and_sender(http, 2)
    async with connect_gateway(device.client) as gateway:
        await _envelopes(gateway, 2)
        await send_numbered(sender, device, 1)
        later = await _envelopes(gateway, 1)  # only the new one: the cursor moved on
        assert sum(len(b) for b in later) == 1
    async with connect_gateway(device.client) as gateway:
        assert sum(len(b) for b in await _envelopes(gateway, 3)) == 3


async def test_flushed_acks_never_come_back(
    http: httpx.AsyncClient, db: Database, services: Services
) -> None:
    device, _sender = await device_and_sender(http, 3)
    async with connect_gateway(device.client) as gateway:
        batch = (await _envelopes(gateway, 3))[0]
        await gateway.ack([batch[0].id, batch[1].id])
    # The session ended: its acknowledgements were flushed on the way out.
    await _sessions_ended(services)
    assert await pending(db, device) == 1
    async with connect_gateway(device.client) as gateway:
        again = (await _envelopes(gateway, 1))[0]
        assert [e.id for e in again] == [batch[2].id]
        await nothing_more(gateway, 0.3)


@pytest.mark.settings(ws_ack_batch_size=5, ws_ack_flush_interval_ms=1000)
async def test_acked_messages_stay_pending_until_flushed(
    http: httpx.AsyncClient, db: Database
) -> None:
    device, _sender = await device_and_sender(http, 3)
    async with connect_gateway(device.client) as gateway:
        batch = (await _envelopes(gateway, 3))[0]
        await gateway.ack([e.id for e in batch])
        await trio.sleep(0.2)
        assert await pending(db, device) == 3
        await until(lambda: pending_is(db, device, 0), seconds=5)


async def test_acks_of_other_devices_messages_delete_nothing(
    http: httpx.AsyncClient, db: Database, services: Services
) -> None:
    victim = await new_device(http, one_time_pre_keys=20)
    attacker = await new_device(http, one_time_pre_keys=20)
    sender = await new_device(http)
    await send_numbered(sender, victim, 1)
    async with connect_gateway(victim.client) as gateway:
        envelope = (await _envelopes(gateway, 1))[0][0]
    async with connect_gateway(attacker.client) as gateway:
        await gateway.ack([envelope.id])
    await _sessions_ended(services)
    assert await pending(db, victim) == 1


async def test_junk_frames_are_ignored(
    http: httpx.AsyncClient, db: Database, services: Services
) -> None:
    device, sender = await device_and_sender(http, 2)
    async with connect_gateway(device.client) as gateway:
        batch = (await _envelopes(gateway, 2))[0]
        for junk in (
            b"\xff\xff\xff",
            b"",
            wire.encode_pre_key_status_frame(1, 2),
            wire.encode_envelope_batch_frame([]),
        ):
            await gateway.websocket.send_message(junk)
        await gateway.websocket.send_message("text is ignored too")
        # An ack frame mixing a malformed id with a valid one: the valid one counts.
        await gateway.websocket.send_message(wire.encode_ack_frame([b"short", batch[0].id.bytes]))
        await send_numbered(sender, device, 1)
        assert sum(len(b) for b in await _envelopes(gateway, 1)) == 1
    await _sessions_ended(services)
    assert await pending(db, device) == 2


async def test_several_sessions_of_one_device_each_receive(http: httpx.AsyncClient) -> None:
    device, sender = await device_and_sender(http)
    async with connect_gateway(device.client) as first, connect_gateway(device.client) as second:
        await send_numbered(sender, device, 1)
        assert len((await _envelopes(first, 1))[0]) == 1
        assert len((await _envelopes(second, 1))[0]) == 1


# --- events ----------------------------------------------------------------------------


async def test_takeover_closes_every_session_of_the_device(http: httpx.AsyncClient) -> None:
    device = await new_device(http, one_time_pre_keys=20)
    bystander = await new_device(http, one_time_pre_keys=20)
    async with (
        connect_gateway(device.client) as first,
        connect_gateway(device.client) as second,
        connect_gateway(bystander.client) as other,
    ):
        fresh = DeviceKeys.generate()
        await device.client.upload_keys(fresh.upload_json(include_identity=True))
        for gateway in (first, second):
            with trio.fail_after(5), pytest.raises(ConnectionClosed) as closed:
                await gateway.next_event()
            assert closed.value.reason.code == 1000
        sender = await new_device(http)
        await send_numbered(sender, bystander, 1)
        assert len((await _envelopes(other, 1))[0]) == 1


async def test_pre_key_status_follows_fetches_below_the_threshold(
    http: httpx.AsyncClient,
) -> None:
    device = await new_device(http, one_time_pre_keys=21)
    fetcher = await new_device(http)
    async with connect_gateway(device.client) as gateway:
        await fetcher.client.fetch_bundles(device.user_id)  # 20 left: not below
        await nothing_more(gateway, 1.0)
        await fetcher.client.fetch_bundles(device.user_id)  # 19 left
        with trio.fail_after(5):
            assert await gateway.next_event() == PreKeyStatus(19, 20)


async def test_pre_key_statuses_are_debounced(http: httpx.AsyncClient) -> None:
    device = await new_device(http, one_time_pre_keys=25)
    fetchers = [await new_device(http) for _ in range(4)]
    statuses: list[PreKeyStatus] = []
    async with connect_gateway(device.client) as gateway:

        async def fetch(fetcher: Device) -> None:
            for _ in range(5):
                await fetcher.client.fetch_bundles(device.user_id)

        async with trio.open_nursery() as nursery:
            for fetcher in fetchers:
                nursery.start_soon(fetch, fetcher)
        with trio.move_on_after(2.0):
            while True:
                event = await gateway.next_event()
                assert isinstance(event, PreKeyStatus)
                statuses.append(event)
    assert 1 <= len(statuses) < 10
    assert statuses[-1] == PreKeyStatus(5, 20)


# --- liveness --------------------------------------------------------------------------


@pytest.mark.settings(ws_ping_interval_secs=1, ws_ping_timeout_secs=1)
async def test_server_pings_and_drops_silent_clients(
    relay: Listening, http: httpx.AsyncClient
) -> None:
    device = await new_device(http, one_time_pre_keys=20)
    raw = await RawWebSocket.connect(relay.api_url, await device.client.gateway_ticket())
    started = trio.current_time()
    pinged = False
    with trio.fail_after(6):
        while (event := await raw.next_event()) is not None:
            pinged = pinged or isinstance(event, Ping)
    assert pinged
    assert trio.current_time() - started < 4.5
    await raw.aclose()


@pytest.mark.parametrize(
    "interval",
    [
        pytest.param(
            1, marks=pytest.mark.settings(ws_ping_interval_secs=1, ws_ping_timeout_secs=5)
        ),
        # The reference treats 0 as 1 second.
        pytest.param(
            0, marks=pytest.mark.settings(ws_ping_interval_secs=0, ws_ping_timeout_secs=5)
        ),
    ],
)
async def test_the_first_ping_comes_one_interval_after_connecting(
    relay: Listening, http: httpx.AsyncClient, interval: int
) -> None:
    device = await new_device(http, one_time_pre_keys=20)
    raw = await RawWebSocket.connect(relay.api_url, await device.client.gateway_ticket())
    try:
        started = trio.current_time()
        with trio.fail_after(5):
            while not isinstance(await raw.next_event(), Ping):
                pass
        assert trio.current_time() - started >= max(1, interval) - 0.1
    finally:
        await raw.aclose()


@pytest.mark.settings(ws_max_batch_bytes=1_000_000)
async def test_client_pings_are_answered_during_bulk_delivery(
    relay: Listening, http: httpx.AsyncClient
) -> None:
    device, sender = await device_and_sender(http)
    for _ in range(10):  # 40 envelopes of 400 kB: 20 frames of two
        await sender.client.send_messages([Outgoing(device.id, b"b" * 400_000) for _ in range(4)])
    raw = await RawWebSocket.connect(relay.api_url, await device.client.gateway_ticket())
    try:
        frames = 0
        with trio.fail_after(10):
            while not isinstance(await raw.next_event(), BytesMessage):
                pass  # the bulk delivery has started
            await raw.ping(b"are you there")
            while not isinstance(event := await raw.next_event(), Pong):
                if isinstance(event, BytesMessage) and event.message_finished:
                    frames += 1
        assert event.payload == b"are you there"
        assert frames < 15  # not queued behind the whole backlog
    finally:
        await raw.aclose()


async def test_an_oversized_client_message_closes_with_1009(
    relay: Listening, http: httpx.AsyncClient
) -> None:
    device = await new_device(http, one_time_pre_keys=20)
    raw = await RawWebSocket.connect(relay.api_url, await device.client.gateway_ticket())
    try:
        await raw.send(b"\x00" * (16 * 1024 * 1024 + 1))
        with trio.fail_after(10):
            while not isinstance(event := await raw.next_event(), CloseConnection):
                assert event is not None, "closed without a close frame"
        assert event.code == 1009
    finally:
        await raw.aclose()


@pytest.mark.settings(ws_ping_interval_secs=1, ws_ping_timeout_secs=1)
async def test_clients_that_answer_pings_stay_connected(http: httpx.AsyncClient) -> None:
    device, sender = await device_and_sender(http)
    async with connect_gateway(device.client) as gateway:
        await trio.sleep(3.5)  # trio-websocket answers the pings
        await send_numbered(sender, device, 1)
        assert len((await _envelopes(gateway, 1))[0]) == 1


# --- isolation and shutdown ------------------------------------------------------------


@pytest.mark.settings(ws_outbound_buffer_size=2, ws_message_fetch_batch_size=1)
async def test_a_stalled_reader_does_not_hold_up_others(
    relay: Listening, http: httpx.AsyncClient, services: Services
) -> None:
    stalled = await new_device(http, one_time_pre_keys=20)
    lively = await new_device(http, one_time_pre_keys=20)
    sender = await new_device(http)
    big = b"z" * 200_000
    for _ in range(8):
        await sender.client.send_messages([Outgoing(stalled.id, big) for _ in range(10)])
    stats = services.gateway.stats
    raw = await RawWebSocket.connect(relay.api_url, await stalled.client.gateway_ticket())
    try:
        await trio.sleep(1.0)  # the stalled session fills the socket and its buffers
        stuck_at = stats.pages_read
        assert stuck_at < 80  # the pump waits instead of reading the backlog into memory
        await trio.sleep(0.5)
        assert stats.pages_read == stuck_at
        async with connect_gateway(lively.client) as gateway:
            started = trio.current_time()
            await send_numbered(sender, lively, 1)
            assert len((await _envelopes(gateway, 1))[0]) == 1
            assert trio.current_time() - started < 2
    finally:
        await raw.aclose()


@pytest.mark.settings(ws_outbound_buffer_size=1, ws_message_fetch_batch_size=1)
async def test_shutdown_is_not_held_up_by_a_stalled_reader(
    settings: Settings, services: Services
) -> None:
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        listening = await nursery.start(partial(run_server, settings, services, shutdown=shutdown))
        async with httpx.AsyncClient(base_url=listening.api_url) as http:
            stalled = await new_device(http, one_time_pre_keys=20)
            sender = await new_device(http)
            for _ in range(10):
                await sender.client.send_messages(
                    [Outgoing(stalled.id, b"z" * 500_000) for _ in range(3)]
                )
            ticket = await stalled.client.gateway_ticket()
            raw = await RawWebSocket.connect(listening.api_url, ticket)
            try:
                await trio.sleep(0.5)
                assert services.gateway.stats.sessions_open == 1
                stopped_at = trio.current_time()
                shutdown.set()
                with trio.fail_after(settings.server_shutdown_timeout_secs + 5):
                    while services.gateway.stats.sessions_open:  # noqa: ASYNC110
                        await trio.sleep(0.05)
                assert trio.current_time() - stopped_at < settings.server_shutdown_timeout_secs + 3
            finally:
                await raw.aclose()


async def test_shutdown_closes_sessions_with_1001(
    settings: Settings, services: Services, db: Database
) -> None:
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        listening = await nursery.start(partial(run_server, settings, services, shutdown=shutdown))
        async with httpx.AsyncClient(base_url=listening.api_url) as http:
            device = await new_device(http, one_time_pre_keys=20)
            async with connect_gateway(device.client) as gateway:
                shutdown.set()
                with trio.fail_after(5), pytest.raises(ConnectionClosed) as closed:
                    await gateway.next_event()
                assert closed.value.reason.code == 1001
                assert closed.value.reason.reason == "Server shutting down"
