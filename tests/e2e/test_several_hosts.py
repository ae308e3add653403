"""Three ``relay serve`` hosts in network namespaces behind haproxy, on one database, one
Redis and one S3 bucket (moto), all on a test-owned bridge: to a client they are one
server. Live delivery crosses hosts and the balancer; a take-over through one host
closes the device's session on another (1000); a host killed with SIGKILL loses
its clients to the others, which deliver everything not acknowledged; a Redis restarted
mid-traffic leaves no message undelivered; attachments and backups cross hosts; the auth
limit is one bucket for all hosts; a PowerAuth campaign is delivered by every host's push
workers, each device once."""

from __future__ import annotations

import base64
import dataclasses
import signal
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed

from bench.backing import Backend, RedisServer, haproxy, moto_server, new_bucket, running_redis
from relay.client import DeviceKeys, GatewayConnection, ObscuraClient, Outgoing, connect_gateway
from relay.crypto.sealing import new_key
from tests.conftest import TEST_JWT_SECRET
from tests.e2e.hosts import BRIDGE_ADDRESS, Network, forward, network
from tests.e2e.process import Emulator, Serving, emulator_process, environment, run_relay, serving
from tests.e2e.pushing import received_by
from tests.faces.conftest import call, error_of
from tests.factories import Device, new_device
from tests.messaging import numbered, receive_envelopes, send_numbered
from tests.waiting import until

HOSTS = 3
AUTH_BURST = 12
PUSH_CONCURRENCY = 4


@dataclass
class Cluster:
    """The running hosts, the balancer in front and the Redis they share."""

    url: str
    nodes: list[Serving]
    redis: RedisServer
    network: Network
    env: dict[str, str]
    """The hosts' shared settings (for ``relay`` admin commands on the same data)."""

    def api(self, index: int) -> str:
        """Host ``index``'s API, reached directly over the bridge."""
        return self.nodes[index].api

    def holding_a_client(self) -> int:
        """The host with a client connection established on its API port."""
        for index, node in enumerate(self.nodes):
            port = _port(node.api)
            shown = subprocess.run(
                [*self.network.prefix(index), "ss", "-Htn", "state", "established"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            if any(line.split()[2].endswith(f":{port}") for line in shown.splitlines()):
                return index
        raise AssertionError("no host holds a client connection")


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


@pytest.fixture(scope="module")
def bridge() -> Iterator[Network]:
    """The namespaces and their bridge, for the module."""
    with network(HOSTS) as made:
        yield made


def _database_on_bridge(url: str, stack: ExitStack) -> str:
    # SQLite is a file every namespace sees; PostgreSQL listens on loopback only.
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        return url
    stack.enter_context(forward(15432, f"{parts.hostname}:{parts.port or 5432}"))
    return url.replace(parts.netloc.split("@")[-1], f"{BRIDGE_ADDRESS}:15432")


@pytest.fixture(scope="module")
def fcm(bridge: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """An FCM emulator on the bridge, where every host reaches it."""
    state = tmp_path_factory.mktemp("fcm")
    with emulator_process("fcm", state, "--host", BRIDGE_ADDRESS) as emulator:
        yield emulator


@pytest.fixture
def cluster(bridge: Network, fcm: Emulator, tmp_path: Path, database_url: str) -> Iterator[Cluster]:
    """Three hosts on one database, Redis and bucket, and haproxy in front."""
    with ExitStack() as stack:
        redis = stack.enter_context(running_redis(tmp_path / "redis", BRIDGE_ADDRESS))
        endpoint = stack.enter_context(moto_server(host=BRIDGE_ADDRESS))
        bucket = new_bucket(endpoint)
        shared = environment(
            RELAY_DATABASE_URL=_database_on_bridge(database_url, stack),
            RELAY_PUBSUB_URL=redis.url,
            RELAY_AUTH_JWT_SECRET=TEST_JWT_SECRET,
            RELAY_PUSH_CREDENTIALS_KEY=base64.b64encode(new_key()).decode(),
            RELAY_BLOB_STORE="s3",
            RELAY_STORAGE_BUCKET=bucket.bucket,
            RELAY_STORAGE_ENDPOINT=endpoint,
            RELAY_STORAGE_ACCESS_KEY=bucket.access_key,
            RELAY_STORAGE_SECRET_KEY=bucket.secret_key,
            RELAY_STORAGE_FORCE_PATH_STYLE="true",
            RELAY_RATE_LIMIT_PER_SECOND="100000",
            RELAY_RATE_LIMIT_BURST="100000",
            RELAY_RATE_LIMIT_AUTH_PER_SECOND="1",
            RELAY_RATE_LIMIT_AUTH_BURST=str(AUTH_BURST),
            RELAY_AUTH_PASSWORD_HASH_MEMORY_KIB="64",
            RELAY_AUTH_PASSWORD_HASH_ITERATIONS="1",
            RELAY_PUSH_FCM_URL=fcm.url,
            RELAY_PUSH_FCM_TOKEN_URL=f"{fcm.url}/token",
            RELAY_PUSH_CA_FILE=str(fcm.state / "emulator-cert.pem"),
            # Few deliveries at a time per host: a campaign outlasts every host's poll.
            RELAY_NOTIFICATIONS_WORKER_CONCURRENCY=str(PUSH_CONCURRENCY),
            RELAY_POWERAUTH_CAMPAIGN_PAGE_SIZE="25",
        )
        nodes = [
            stack.enter_context(
                serving(
                    {**shared, "RELAY_DATA_DIR": str(tmp_path / f"host{index}")},
                    *("--server-host", bridge.address(index)),
                    prefix=bridge.prefix(index),
                )
            )
            for index in range(HOSTS)
        ]
        backends = [
            Backend(bridge.address(i), _port(node.api), _port(node.management))
            for i, node in enumerate(nodes)
        ]
        url = stack.enter_context(haproxy(tmp_path / "haproxy", backends)).url
        yield Cluster(url, nodes, redis, bridge, shared)


async def _until_closed(gateway: GatewayConnection) -> None:
    while True:
        await gateway.next_event()


def _through(http: httpx.AsyncClient, device: Device) -> Device:
    """The same device, speaking through another host (or the balancer)."""
    return dataclasses.replace(device, client=ObscuraClient(http, device.client.session))


async def test_live_delivery_crosses_hosts_and_the_balancer(cluster: Cluster) -> None:
    async with (
        httpx.AsyncClient(base_url=cluster.url, timeout=30) as balanced,
        httpx.AsyncClient(base_url=cluster.api(0), timeout=30) as host_0,
        httpx.AsyncClient(base_url=cluster.api(1), timeout=30) as host_1,
    ):
        alice = await new_device(balanced)
        bob = await new_device(balanced)
        async with connect_gateway(_through(host_1, alice).client) as gateway:
            await send_numbered(_through(host_0, bob), alice, 5)
            batches = await receive_envelopes(gateway, 5, seconds=10)
            assert [e.message for b in batches for e in b] == [numbered(i) for i in range(5)]
            await gateway.ack([e.id for b in batches for e in b])
        async with connect_gateway(alice.client) as through_haproxy:
            await send_numbered(bob, alice, 1)
            live = await receive_envelopes(through_haproxy, 1, seconds=10)
            assert live[0][0].message == numbered(0)


async def test_a_take_over_through_one_host_closes_the_session_on_another(
    cluster: Cluster,
) -> None:
    async with (
        httpx.AsyncClient(base_url=cluster.api(0), timeout=30) as host_0,
        httpx.AsyncClient(base_url=cluster.api(2), timeout=30) as host_2,
    ):
        alice = await new_device(host_0)
        async with connect_gateway(_through(host_2, alice).client) as gateway:
            fresh = DeviceKeys.generate()
            await alice.client.upload_keys(fresh.upload_json(include_identity=True))
            with trio.fail_after(10), pytest.raises(ConnectionClosed) as closed:
                await _until_closed(gateway)
        assert closed.value.reason.code == 1000


async def test_clients_of_a_killed_host_get_everything_unacknowledged_elsewhere(
    cluster: Cluster,
) -> None:
    async with httpx.AsyncClient(base_url=cluster.url, timeout=30) as balanced:
        alice = await new_device(balanced)
        bob = await new_device(balanced)
        await send_numbered(bob, alice, 10)
        async with connect_gateway(alice.client) as gateway:
            first = await receive_envelopes(gateway, 10, seconds=10)
            acked = [e for b in first for e in b][:4]
            await gateway.ack([e.id for e in acked])
            await trio.sleep(1.5)  # the acknowledgements are flushed (500 ms batches)
            victim = cluster.holding_a_client()
            cluster.nodes[victim].process.send_signal(signal.SIGKILL)
            with trio.fail_after(10), pytest.raises(ConnectionClosed):
                await _until_closed(gateway)
        # Sent while alice is away: haproxy redispatches away from the dead host.
        await bob.client.send_messages([Outgoing(alice.id, b"while away")])
        async with connect_gateway(alice.client) as again:
            batches = await receive_envelopes(again, 7, seconds=15)
        received = [e.message for b in batches for e in b]
        assert received == [numbered(i) for i in range(4, 10)] + [b"while away"]
        assert cluster.holding_a_client() != victim


async def test_a_redis_restart_mid_traffic_leaves_nothing_undelivered(cluster: Cluster) -> None:
    async with (
        httpx.AsyncClient(base_url=cluster.api(0), timeout=30) as host_0,
        httpx.AsyncClient(base_url=cluster.api(2), timeout=30) as host_2,
    ):
        alice = await new_device(host_0)
        bob = await new_device(host_0)
        async with connect_gateway(_through(host_2, alice).client) as gateway:
            received: list[bytes] = []

            async def receive_all() -> None:
                while len(received) < 30:
                    for batch in await receive_envelopes(gateway, 1, seconds=30):
                        received.extend(e.message for e in batch)
                        await gateway.ack([e.id for e in batch])

            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive_all)
                for index in range(30):
                    if index == 10:
                        await trio.to_thread.run_sync(cluster.redis.stop)
                    if index == 20:
                        await trio.to_thread.run_sync(cluster.redis.start)
                    await bob.client.send_messages([Outgoing(alice.id, numbered(index))])
                    await trio.sleep(0.05)
        assert sorted(set(received)) == [numbered(i) for i in range(30)]


async def test_attachments_and_backups_cross_hosts(cluster: Cluster) -> None:
    async with (
        httpx.AsyncClient(base_url=cluster.api(0), timeout=30) as host_0,
        httpx.AsyncClient(base_url=cluster.api(2), timeout=30) as host_2,
    ):
        alice = await new_device(host_0)
        content = bytes(range(256)) * 1024
        attachment = await alice.client.upload_attachment(content)
        elsewhere = _through(host_2, alice).client
        assert await elsewhere.download_attachment(attachment.id) == content
        version = await alice.client.upload_backup(b"state" * 20, replaces=None)
        backup = await elsewhere.download_backup()
        assert backup is not None
        assert (backup.version, backup.data) == (version, b"state" * 20)


async def test_the_auth_limit_is_one_bucket_for_all_hosts(cluster: Cluster) -> None:
    statuses: list[int] = []
    clients = [httpx.AsyncClient(base_url=cluster.api(i), timeout=30) for i in range(HOSTS)]
    try:
        # Failed logins round-robin over the hosts, straight over the bridge.
        for attempt in range(AUTH_BURST + 6):
            response = await clients[attempt % HOSTS].post(
                "/v1/sessions", json={"username": "nobody", "password": "wrong-password"}
            )
            statuses.append(response.status_code)
    finally:
        for client in clients:
            await client.aclose()
    assert statuses.count(429) >= 5, statuses
    assert statuses.count(401) <= AUTH_BURST + 1, statuses


def _powerauth_app(cluster: Cluster, fcm: Emulator, directory: Path) -> tuple[str, str]:
    """A push app on FCM and an integrator key, made with the admin commands (as an
    operator would, on the hosts' shared database); returns (app, key)."""
    env = {**cluster.env, "RELAY_DATA_DIR": str(directory)}
    app = f"campaigns-{directory.name[-8:]}"
    for command in (
        ("apps", "create", app),
        ("apps", "set-fcm", app, "--service-account", str(fcm.state / "fcm-service-account.json")),
    ):
        done = run_relay(*command, env=env)
        assert done.returncode == 0, done.stderr
    created = run_relay("keys", "create", "--name", app, env=env)
    assert created.returncode == 0, created.stderr
    return app, created.stdout.strip()


async def test_a_campaign_is_sent_by_every_host_each_device_once(
    cluster: Cluster, fcm: Emulator, tmp_path: Path
) -> None:
    app, key = _powerauth_app(cluster, fcm, tmp_path / "admin")
    devices = 90
    tokens = [f"campaign-{app}-{index:03d}" for index in range(devices)]
    async with httpx.AsyncClient(http2=True, verify=_emulator_trust(fcm)) as control:
        # Every notification is answered after 0.3 s: one host alone, four at a time,
        # would need 7 s; every host's workers poll the shared queue each second.
        stall = {"by_rate": [[1.0, {"kind": "stall", "seconds": 0.3}]]}
        assert (await control.post(f"{fcm.url}/_emulator/faults", json=stall)).status_code == 200
    hosts = [
        httpx.AsyncClient(
            base_url=cluster.api(i), timeout=30, headers={"Authorization": f"Bearer {key}"}
        )
        for i in range(HOSTS)
    ]
    try:
        for index, token in enumerate(tokens):
            device = {
                "appId": app,
                "token": token,
                "platform": "fcm",
                "activationId": f"act-{index}",
                "userId": f"user-{index}",
            }
            status, answer = await call(hosts[index % HOSTS], "/push/device/create", device)
            assert (status, answer) == (200, {"status": "OK"})
        body = {"title": "Statement", "body": "Your statement is ready"}
        status, answer = await call(
            hosts[0], "/push/campaign/create", {"appId": app, "message": body}
        )
        assert status == 200, answer
        ident = answer["responseObject"]["id"]
        users = [f"user-{index}" for index in range(devices)]
        status, _ = await call(hosts[1], f"/push/campaign/{ident}/user/add", users)
        assert status == 200
        status, answer = await call(hosts[2], f"/push/campaign/send/live/{ident}")
        assert (status, answer) == (200, {"status": "OK"})
        # Started once: the other hosts see it already being sent.
        status, answer = await call(hosts[0], f"/push/campaign/send/live/{ident}")
        assert (status, error_of(answer)[1]) == (400, "Campaign is already being sent")

        async def recorded() -> bool:
            _, detail = await call(hosts[1], f"/push/campaign/{ident}/detail", method="GET")
            return bool(detail["responseObject"]["progress"]["pending"] == 0) and bool(
                detail["responseObject"]["sent"]
            )

        await until(recorded, seconds=90)
        _, detail = await call(hosts[1], f"/push/campaign/{ident}/detail", method="GET")
        progress = detail["responseObject"]["progress"]
        assert progress == {
            "state": "sent",
            "devices": devices,
            "sent": devices,
            "failed": 0,
            "pending": 0,
        }
    finally:
        for client in hosts:
            await client.aclose()
    received = [item for item in await received_by(fcm) if item["token"] in set(tokens)]
    assert sorted(item["token"] for item in received) == tokens  # each device exactly once
    senders = {item["peer"] for item in received}
    assert senders == {cluster.network.address(i) for i in range(HOSTS)}


def _emulator_trust(emulator: Emulator) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(emulator.state / "emulator-cert.pem"))
