"""Hub events between worker processes: the datagram codec and two hubs over real Unix
datagram sockets (the supervisor's inbox layout)."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

import pytest
import trio

from relay.events.hub import EventKind, LocalHub
from relay.events.peer_hub import (
    MAX_IDS_PER_DATAGRAM,
    PeerHub,
    bind_inbox,
    decode_event,
    encode_events,
    inbox_address,
)
from tests.waiting import until_true


def test_events_round_trip_in_datagrams_of_bounded_size() -> None:
    devices = [uuid.uuid4() for _ in range(MAX_IDS_PER_DATAGRAM * 2 + 3)]
    datagrams = encode_events(EventKind.MESSAGES_QUEUED, devices)
    assert [len(d) for d in datagrams] == [1 + 16 * MAX_IDS_PER_DATAGRAM] * 2 + [1 + 16 * 3]
    decoded = [decode_event(d) for d in datagrams]
    assert {kind for kind, _ in decoded} == {EventKind.MESSAGES_QUEUED}
    assert [device for _, ids in decoded for device in ids] == devices
    assert encode_events(EventKind.TAKEN_OVER, []) == []


@pytest.mark.parametrize("datagram", [b"", b"\x01" + bytes(15), b"\x09" + bytes(16)])
def test_a_datagram_that_is_not_an_event_is_refused(datagram: bytes) -> None:
    with pytest.raises(ValueError, match=r"hub datagram|not a valid EventKind"):
        decode_event(datagram)


@asynccontextmanager
async def _hubs(count: int, group: str | None = None) -> AsyncIterator[list[PeerHub]]:
    """``count`` peer hubs laid out as the supervisor lays out its workers, running."""
    group = group or uuid.uuid4().hex
    inboxes = [bind_inbox(group, index) for index in range(count)]
    hubs = [
        PeerHub(
            LocalHub(),
            inbox,
            [inbox_address(group, peer) for peer in range(count) if peer != index],
        )
        for index, inbox in enumerate(inboxes)
    ]
    stopping = trio.Event()
    async with trio.open_nursery() as nursery:
        for hub in hubs:
            nursery.start_soon(hub.run, stopping)
        await trio.sleep(0.05)
        yield hubs
        stopping.set()


async def test_events_reach_the_sessions_of_every_worker() -> None:
    device, other = uuid.uuid4(), uuid.uuid4()
    taken = trio.Event()
    async with _hubs(3) as (first, second, third):
        with (
            first.subscribe(device) as here,
            third.subscribe(device) as there,
            second.subscribe(other) as elsewhere,
        ):
            there.on_take_over = taken.set
            await second.messages_queued([device])
            with trio.fail_after(5):
                await here.messages.wait()
                await there.messages.wait()
            assert not elsewhere.messages.is_set()

            await first.pre_keys_low([device, other])
            with trio.fail_after(5):
                await there.pre_keys_low.wait()
                await elsewhere.pre_keys_low.wait()
            assert here.pre_keys_low.is_set()

            await second.device_taken_over(device)
            with trio.fail_after(5):
                await taken.wait()
            assert [hub.session_count() for hub in (first, second, third)] == [1, 1, 1]


async def test_a_peer_that_has_exited_is_dropped_and_local_sessions_still_wake(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "relay.gateway")
    device = uuid.uuid4()
    group = uuid.uuid4().hex
    inboxes = [bind_inbox(group, index) for index in range(2)]
    first = PeerHub(LocalHub(), inboxes[0], [inbox_address(group, 1)])
    second = PeerHub(LocalHub(), inboxes[1], [inbox_address(group, 0)])
    stop_first, stop_second = trio.Event(), trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(first.run, stop_first)
        nursery.start_soon(second.run, stop_second)
        await trio.sleep(0.05)
        assert await first.healthy()
        with first.subscribe(device) as here:
            stop_second.set()  # its inbox closes as a worker's does when it exits
            await trio.sleep(0.05)
            await first.messages_queued([device])
            assert here.messages.is_set()
            await until_true(lambda: bool(_gone(caplog)))
            await first.messages_queued([device])
            await trio.sleep(0.05)
            assert not await first.healthy()  # /readyz reports the fan-out broken
        stop_first.set()
    assert len(_gone(caplog)) == 1


def _gone(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "is gone" in r.getMessage()]


async def test_a_stray_datagram_is_ignored() -> None:
    device = uuid.uuid4()
    group = uuid.uuid4().hex
    async with _hubs(1, group) as (hub,):
        with hub.subscribe(device) as here:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as stray:
                stray.sendto(b"\x01" + bytes(5), inbox_address(group, 0))
                stray.sendto(b"\x01" + device.bytes, inbox_address(group, 0))
            with trio.fail_after(5):
                await here.messages.wait()


async def test_events_for_a_peer_that_is_not_reading_merge_and_all_arrive() -> None:
    group = uuid.uuid4().hex
    inboxes = [bind_inbox(group, index) for index in range(2)]
    first = PeerHub(LocalHub(), inboxes[0], [inbox_address(group, 1)])
    second = PeerHub(LocalHub(), inboxes[1], [inbox_address(group, 0)])
    devices = [uuid.uuid4() for _ in range(20_000)]
    stopping = trio.Event()
    with ExitStack() as stack:
        woken = [stack.enter_context(second.subscribe(device)) for device in devices]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(first.run, stopping)
            # Many concurrent publishers, one device each, while the peer reads nothing:
            # its queue fills, and nobody waits or fails.
            with trio.fail_after(5):
                async with trio.open_nursery() as publishers:
                    for device in devices:
                        publishers.start_soon(first.messages_queued, [device])
            await trio.sleep(0.1)
            assert not any(subscription.messages.is_set() for subscription in woken)
            nursery.start_soon(second.run, stopping)
            with trio.fail_after(10):
                for subscription in woken:
                    await subscription.messages.wait()
            stopping.set()
