"""Hub events between hosts on Redis pub/sub, against a private redis-server: events
cross, a process's own events are applied once, a restarted Redis makes every session
read again, events published while Redis is away go out after it is back, and a Redis
that is not there at start leaves the server running, reported unready."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from bench.backing import RedisServer
from relay.events.hub import EventKind, LocalHub
from relay.events.peer_hub import MAX_IDS_PER_DATAGRAM
from relay.events.redis_hub import CHANNEL, RedisHub, decode_bus_message, encode_bus_message
from storage.redis.client import RedisAddress, RedisConnection, RedisError
from tests.waiting import until, until_true


def test_bus_messages_round_trip_in_bounded_sizes() -> None:
    node = uuid.uuid4()
    devices = [uuid.uuid4() for _ in range(MAX_IDS_PER_DATAGRAM + 2)]
    messages = encode_bus_message(node, EventKind.PRE_KEYS_LOW, devices)
    assert [len(m) for m in messages] == [17 + 16 * MAX_IDS_PER_DATAGRAM, 17 + 32]
    decoded = [decode_bus_message(m) for m in messages]
    assert {(n, kind) for n, kind, _ in decoded} == {(node, EventKind.PRE_KEYS_LOW)}
    assert [d for _, _, ids in decoded for d in ids] == devices


@pytest.mark.parametrize("data", [b"", bytes(16), bytes(17) + bytes(15), bytes(16) + b"\x09"])
def test_a_message_that_is_not_an_event_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"bus message|not a valid EventKind"):
        decode_bus_message(data)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://10.0.0.5", RedisAddress("10.0.0.5")),
        ("redis://:s3cret@cache:6380/2", RedisAddress("cache", 6380, 2, None, "s3cret")),
        ("redis://relay:pw@cache/0", RedisAddress("cache", 6379, 0, "relay", "pw")),
    ],
)
def test_addresses_parse_and_never_print_the_password(url: str, address: RedisAddress) -> None:
    parsed = RedisAddress.parse(url)
    assert parsed == address
    assert "s3cret" not in str(parsed)
    assert "pw" not in str(parsed)


@pytest.mark.parametrize("url", ["http://cache:6379", "redis:///0", "redis://cache/x"])
def test_what_is_not_a_redis_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"redis://|number"):
        RedisAddress.parse(url)


def _hub(url: str) -> RedisHub:
    return RedisHub(LocalHub(), RedisAddress.parse(url), min_backoff=0.05, max_backoff=0.2)


@asynccontextmanager
async def running(*hubs: RedisHub) -> AsyncIterator[None]:
    stopping = trio.Event()
    async with trio.open_nursery() as nursery:
        for hub in hubs:
            nursery.start_soon(hub.run, stopping)
        yield
        stopping.set()


async def _healthy(*hubs: RedisHub) -> None:
    async def all_healthy() -> bool:
        return all([await hub.healthy() for hub in hubs])

    await until(all_healthy)


async def test_events_cross_to_the_other_hosts_sessions(redis_server: RedisServer) -> None:
    host_a, host_b = _hub(redis_server.url), _hub(redis_server.url)
    device, other = uuid.uuid4(), uuid.uuid4()
    async with running(host_a, host_b):
        await _healthy(host_a, host_b)
        with host_b.subscribe(device) as session, host_b.subscribe(other) as bystander:
            session.messages.clear()
            bystander.messages.clear()
            closed: list[bool] = []
            session.on_take_over = lambda: closed.append(True)
            await host_a.messages_queued([device])
            await until_true(session.messages.is_set)
            await host_a.pre_keys_low([device])
            await until_true(session.pre_keys_low.is_set)
            await host_a.device_taken_over(device)
            await until_true(lambda: closed == [True])
            assert not bystander.messages.is_set()
            assert not bystander.pre_keys_low.is_set()


async def test_a_hosts_own_events_are_applied_once(redis_server: RedisServer) -> None:
    host_a, host_b = _hub(redis_server.url), _hub(redis_server.url)
    device = uuid.uuid4()
    async with running(host_a, host_b):
        await _healthy(host_a, host_b)
        with host_a.subscribe(device) as here, host_b.subscribe(device) as there:
            closed_here: list[bool] = []
            closed_there: list[bool] = []
            here.on_take_over = lambda: closed_here.append(True)
            there.on_take_over = lambda: closed_there.append(True)
            await host_a.device_taken_over(device)
            assert closed_here == [True]  # at once, not after a round trip
            await until_true(lambda: closed_there == [True])
            # The echo of the event has reached host A as well by now: it is skipped.
            await host_b.messages_queued([uuid.uuid4()])
            await trio.sleep(0.2)
            assert closed_here == [True]


async def test_a_restarted_redis_makes_every_session_read_again(
    redis_server: RedisServer,
) -> None:
    hub = _hub(redis_server.url)
    device = uuid.uuid4()
    async with running(hub):
        await _healthy(hub)
        with hub.subscribe(device) as session:
            session.messages.clear()
            await _stop(redis_server, hub)
            # A message queued on another host now would be announced into the void.
            redis_server.start()
            await until_true(lambda: hub.resyncs == 2, seconds=10)
            assert session.messages.is_set()
            await _healthy(hub)


async def _stop(redis_server: RedisServer, hub: RedisHub) -> None:
    """Stop Redis and wait until the hub has noticed."""
    redis_server.stop()

    async def unhealthy() -> bool:
        return not await hub.healthy()

    await until(unhealthy)


async def test_events_wait_while_redis_is_away_and_go_out_after(
    redis_server: RedisServer,
) -> None:
    hub = _hub(redis_server.url)
    device = uuid.uuid4()
    async with running(hub):
        await _healthy(hub)
        await _stop(redis_server, hub)
        with trio.fail_after(0.5):  # a request never waits for Redis
            await hub.messages_queued([device])
        redis_server.start()
        listener = await RedisConnection.open(RedisAddress.parse(redis_server.url), within=5)
        try:
            await listener.call("SUBSCRIBE", CHANNEL)
            with trio.fail_after(10):
                reply = await listener.reply()
        finally:
            await listener.aclose()
        assert isinstance(reply, list)
        assert isinstance(reply[2], bytes)
        assert decode_bus_message(reply[2]) == (hub.node, EventKind.MESSAGES_QUEUED, [device])


async def test_a_redis_that_is_not_there_leaves_the_hub_unready_until_it_is(
    redis_server: RedisServer,
) -> None:
    redis_server.stop()
    hub = _hub(redis_server.url)
    async with running(hub):
        await trio.sleep(0.3)
        assert not await hub.healthy()
        with hub.subscribe(uuid.uuid4()) as session:
            await hub.messages_queued([session.device_id])  # local sessions still hear
            assert session.messages.is_set()
        redis_server.start()
        await _healthy(hub)


async def test_a_wrong_password_is_an_error_not_a_hang(redis_server: RedisServer) -> None:
    address = RedisAddress("127.0.0.1", redis_server.port, password="wrong")
    with pytest.raises(RedisError, match=r"AUTH|password"):
        await RedisConnection.open(address, within=5)
