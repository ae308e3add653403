"""Two ``relay serve`` processes on one database, one Redis (``RELAY_PUBSUB_URL``) and
one S3 bucket (moto) behave as one server to a client: a message sent through one
reaches a session on the other live, a take-over through one closes the session on the
other, pre-key alerts cross, attachments and backups written through one are read
through the other; nodes started while Redis is down serve on their own (not ready) and
join the bus when it comes, delivering what was queued meanwhile; and without a shared
JWT secret and push key such a node refuses to start."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed

from bench.backing import RedisServer
from relay.client import DeviceKeys, ObscuraClient, Outgoing, PreKeyStatus, connect_gateway
from relay.crypto.sealing import new_key
from storage.s3.store import S3Config
from tests.e2e.process import Serving, environment, relay_process, run_relay
from tests.factories import Device, new_device
from tests.messaging import numbered, receive_envelopes, send_numbered
from tests.waiting import until

PUSH_KEY = base64.b64encode(new_key()).decode()


@dataclass
class TwoNodes:
    """Two ``relay serve`` nodes on one database and their clients."""

    a: Serving
    b: Serving
    via_a: httpx.AsyncClient
    via_b: httpx.AsyncClient


@asynccontextmanager
async def two_nodes(tmp_path: Path, database_url: str, **settings: str) -> AsyncIterator[TwoNodes]:
    """Two nodes with ``settings`` (the bus, the bucket...) and a client of each."""
    with (
        relay_process(tmp_path / "a", database_url, **settings) as node_a,
        relay_process(tmp_path / "b", database_url, **settings) as node_b,
    ):
        async with (
            httpx.AsyncClient(base_url=node_a.api, timeout=30) as via_a,
            httpx.AsyncClient(base_url=node_b.api, timeout=30) as via_b,
        ):
            yield TwoNodes(node_a, node_b, via_a, via_b)


def _on(http: httpx.AsyncClient, device: Device) -> ObscuraClient:
    """The device's own session, spoken through another node."""
    return ObscuraClient(http, device.client.session)


async def test_two_nodes_on_one_bus_behave_as_one_server(
    tmp_path: Path, database_url: str, redis_server: RedisServer
) -> None:
    bus = {"pubsub_url": redis_server.url, "push_credentials_key": PUSH_KEY}
    async with two_nodes(tmp_path, database_url, **bus) as nodes:
        alice = await new_device(nodes.via_a, one_time_pre_keys=21)
        bob = await new_device(nodes.via_a)
        async with connect_gateway(_on(nodes.via_b, alice)) as gateway:
            # Live: the send goes through node A, the session is on node B.
            await send_numbered(bob, alice, 3)
            with trio.fail_after(10):
                batches = await receive_envelopes(gateway, 3)
            assert [e.message for b in batches for e in b] == [numbered(i) for i in range(3)]
            await gateway.ack([e.id for b in batches for e in b])

            # Pre-keys fetched through node A fall below the threshold on node B.
            await bob.client.fetch_bundles(alice.user_id)
            await bob.client.fetch_bundles(alice.user_id)
            with trio.fail_after(10):
                assert await gateway.next_event() == PreKeyStatus(19, 20)

            # A take-over through node A closes the session on node B.
            fresh = DeviceKeys.generate()
            await alice.client.upload_keys(fresh.upload_json(include_identity=True))
            with trio.fail_after(10), pytest.raises(ConnectionClosed) as closed:
                await gateway.next_event()
            assert closed.value.reason.code == 1000
        for node in (nodes.a, nodes.b):
            log, _ = node.stop()
            assert "event bus: subscribed" in log


async def test_blobs_written_through_one_node_are_read_through_another(
    tmp_path: Path, database_url: str, redis_server: RedisServer, s3_bucket: S3Config
) -> None:
    shared = {
        "pubsub_url": redis_server.url,
        "push_credentials_key": PUSH_KEY,
        "blob_store": "s3",
        "storage_bucket": s3_bucket.bucket,
        "storage_endpoint": str(s3_bucket.endpoint),
        "storage_access_key": s3_bucket.access_key,
        "storage_secret_key": s3_bucket.secret_key,
        "storage_force_path_style": "true",
    }
    content = bytes(range(256)) * 4096  # 1 MiB
    async with two_nodes(tmp_path, database_url, **shared) as nodes:
        alice = await new_device(nodes.via_a)
        attachment = await alice.client.upload_attachment(content)
        assert await _on(nodes.via_b, alice).download_attachment(attachment.id) == content
        version = await alice.client.upload_backup(b"backup-" * 20, replaces=None)
        backup = await _on(nodes.via_b, alice).download_backup()
        assert backup is not None
        assert (backup.version, backup.data) == (version, b"backup-" * 20)
        status, ready = await _readiness(nodes.b)
        assert (status, ready["storage"], ready["pubsub"]) == (200, "ok", "ok")


async def _readiness(node: Serving) -> tuple[int, dict[str, str]]:
    async with httpx.AsyncClient(base_url=node.management) as management:
        response = await management.get("/readyz")
    return response.status_code, response.json()


async def test_nodes_started_before_redis_serve_alone_and_join_the_bus_when_it_comes(
    tmp_path: Path, database_url: str
) -> None:
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis")  # its port is chosen; it is not started yet
    bus = {"pubsub_url": redis.url, "push_credentials_key": PUSH_KEY}
    try:
        async with two_nodes(tmp_path, database_url, **bus) as nodes:
            status, report = await _readiness(nodes.b)
            assert (status, report["pubsub"]) == (503, "error")
            alice = await new_device(nodes.via_a)
            bob = await new_device(nodes.via_a)
            async with connect_gateway(_on(nodes.via_b, alice)) as gateway:
                # Queued through A while no bus joins the nodes: B cannot know yet.
                await send_numbered(bob, alice, 2)
                await trio.to_thread.run_sync(redis.start)
                # B's first subscribe makes its sessions read again.
                with trio.fail_after(20):
                    batches = await receive_envelopes(gateway, 2)
                assert [e.message for b in batches for e in b] == [numbered(0), numbered(1)]

                async def ready() -> bool:
                    return (await _readiness(nodes.a))[0] == 200

                await until(ready, seconds=20)
                await bob.client.send_messages([Outgoing(alice.id, b"live")])
                with trio.fail_after(10):
                    live = await receive_envelopes(gateway, 1)
                assert live[0][0].message == b"live"
            for node in (nodes.a, nodes.b):
                log, _ = node.stop()
                assert "event bus: cannot subscribe at" in log
                assert "event bus: subscribed at" in log
    finally:
        redis.stop()


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"RELAY_PUSH_CREDENTIALS_KEY": PUSH_KEY}, "RELAY_AUTH_JWT_SECRET"),
        ({"RELAY_AUTH_JWT_SECRET": "s" * 40}, "RELAY_PUSH_CREDENTIALS_KEY"),
    ],
)
def test_a_node_on_the_bus_needs_the_shared_secrets(
    tmp_path: Path, redis_server: RedisServer, given: dict[str, str], missing: str
) -> None:
    env = environment(
        RELAY_DATA_DIR=str(tmp_path / "data"), RELAY_PUBSUB_URL=redis_server.url, **given
    )
    done = run_relay("serve", "--server-port", "0", "--mgmt-port", "0", env=env, timeout=60)
    assert done.returncode == 2
    assert f"set the same {missing} on every host" in done.stderr
