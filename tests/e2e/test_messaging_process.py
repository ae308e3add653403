"""Messaging end to end: the client SDK against a real ``relay serve`` process, on the
database under test (SQLite, or PostgreSQL with RELAY_TEST_DATABASE_URL)."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed

from relay.client import DeviceKeys, GatewayConnection, Outgoing, connect_gateway
from storage.db import Database
from tests.e2e.process import relay_process
from tests.factories import new_device
from tests.messaging import (
    nothing_more,
    numbered,
    pending,
    pending_is,
    receive_envelopes,
    send_numbered,
)
from tests.rawws import RawWebSocket
from tests.waiting import until

MIB = 1024 * 1024


async def _drain(gateway: GatewayConnection) -> None:
    """Read until the connection closes (raising ``ConnectionClosed``)."""
    while True:
        await gateway.next_event()


async def test_delivery_acknowledgement_and_retries(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    with relay_process(tmp_path, database_url) as server:
        async with httpx.AsyncClient(base_url=server.api, timeout=30) as http:
            alice = await new_device(http, one_time_pre_keys=25)
            bob = await new_device(http)
            await send_numbered(bob, alice, 125)

            # The backlog arrives in pages of 50, oldest first.
            async with connect_gateway(alice.client) as gateway:
                batches = await receive_envelopes(gateway, 125)
                assert [len(b) for b in batches] == [50, 50, 25]
                received = [e for b in batches for e in b]
                assert [e.message for e in received] == [numbered(i) for i in range(125)]
                assert {(e.sender_id, e.sender_device_id) for e in received} == {
                    (bob.user_id, bob.id)
                }
                await gateway.ack([e.id for e in received[:100]])
                # Live delivery on the open connection.
                await send_numbered(bob, alice, 1)
                live = await receive_envelopes(gateway, 1)
                assert live[0][0].message == numbered(0)
            # Acknowledged messages are flushed when the session ends; the rest come back.
            await until(lambda: pending_is(db, alice, 26), seconds=10)
            async with connect_gateway(alice.client) as gateway:
                again = await receive_envelopes(gateway, 26)
                assert [e.id for b in again for e in b] == [e.id for e in received[100:]] + [
                    live[0][0].id
                ]
                await gateway.ack([e.id for b in again for e in b])
                await nothing_more(gateway)
            await until(lambda: pending_is(db, alice, 0), seconds=10)
            async with connect_gateway(alice.client) as gateway:
                await nothing_more(gateway)

            # An idempotent retry, even with another body, queues nothing new.
            key = uuid.uuid4()
            first = await bob.client.send_messages(
                [Outgoing(alice.id, b"once")], idempotency_key=key
            )
            retry = await bob.client.send_messages(
                [Outgoing(alice.id, b"twice"), Outgoing(alice.id, b"thrice")], idempotency_key=key
            )
            assert first == retry == []
            assert await pending(db, alice) == 1
            async with connect_gateway(alice.client) as gateway:
                assert [e.message for b in await receive_envelopes(gateway, 1) for e in b] == [
                    b"once"
                ]
                await nothing_more(gateway)
        server.stop()


async def test_a_takeover_closes_every_socket_of_the_device(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    with relay_process(tmp_path, database_url) as server:
        async with httpx.AsyncClient(base_url=server.api, timeout=30) as http:
            device = await new_device(http, one_time_pre_keys=25)
            bystander = await new_device(http, one_time_pre_keys=25)
            sender = await new_device(http)
            async with (
                connect_gateway(device.client) as first,
                connect_gateway(device.client) as second,
                connect_gateway(bystander.client) as other,
            ):
                await device.client.upload_keys(
                    DeviceKeys.generate(one_time_pre_keys=25).upload_json(include_identity=True)
                )
                for gateway in (first, second):
                    with trio.fail_after(10), pytest.raises(ConnectionClosed) as closed:
                        await gateway.next_event()
                    assert closed.value.reason.code == 1000
                await send_numbered(sender, bystander, 1)
                assert len((await receive_envelopes(other, 1))[0]) == 1
        server.stop()


async def test_a_stalled_reader_costs_bounded_memory_and_delays_nobody(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    with relay_process(tmp_path, database_url) as server:
        async with httpx.AsyncClient(base_url=server.api, timeout=30) as http:
            stalled = await new_device(http, one_time_pre_keys=25)
            lively = await new_device(http, one_time_pre_keys=25)
            sender = await new_device(http)
            backlog = 100
            for _ in range(backlog):  # 100 MiB waiting for the stalled device
                await sender.client.send_messages([Outgoing(stalled.id, b"s" * MIB)])
            await trio.sleep(0.5)
            before = server.anonymous_bytes()
            raw = await RawWebSocket.connect(server.api, await stalled.client.gateway_ticket())
            try:
                await trio.sleep(2.0)  # it reads nothing: the server's buffers fill up
                grown = server.anonymous_bytes() - before
                # About two frames' worth (the one being written, the next one waiting
                # for room), whatever the backlog: 13-16 MiB measured. Each message is
                # copied once on its way into a frame; with a copy per level of protobuf
                # nesting and wsproto's own, 22-43 MiB were measured.
                assert grown < 40 * MIB, f"server grew by {grown / MIB:.1f} MiB"
                async with connect_gateway(lively.client) as gateway:
                    started = trio.current_time()
                    await send_numbered(sender, lively, 1)
                    assert len((await receive_envelopes(gateway, 1))[0]) == 1
                    assert trio.current_time() - started < 2
                    # Shutdown: open sessions are closed with 1001, and the stalled one
                    # cannot hold the process up beyond the grace period.
                    async with trio.open_nursery() as nursery:

                        async def stop() -> None:
                            _, elapsed = await trio.to_thread.run_sync(server.stop)
                            assert elapsed < 10

                        nursery.start_soon(stop)
                        with trio.fail_after(10), pytest.raises(ConnectionClosed) as closed:
                            await _drain(gateway)
                        assert closed.value.reason.code == 1001
                        assert closed.value.reason.reason == "Server shutting down"
            finally:
                await raw.aclose()
    assert await pending(db, stalled) == backlog  # nothing acknowledged, nothing lost


async def test_attachments_and_backups(tmp_path: Path, database_url: str, db: Database) -> None:
    with relay_process(tmp_path, database_url) as server:
        async with httpx.AsyncClient(base_url=server.api, timeout=30) as http:
            device = await new_device(http)
            content = bytes(range(256)) * 4096  # 1 MiB
            attachment = await device.client.upload_attachment(content)
            other = await new_device(http)
            assert await other.client.download_attachment(attachment.id) == content
            version = await device.client.upload_backup(b"b" * 64, replaces=None)
            assert await device.client.upload_backup(b"c" * 64, replaces=version) == version + 1
            backup = await device.client.download_backup()
            assert backup is not None
            assert backup.data == b"c" * 64
        log, _ = server.stop(signal.SIGINT)
    assert "relay stopped" in log
