"""``RELAY_SERVER_WORKERS``: worker processes sharing the API port, end to end against the
real ``relay serve`` (on the database under test)."""

from __future__ import annotations

import os
import signal
import socket
import time
from contextlib import AsyncExitStack
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed

from bench.processes import child_pids
from relay.client import DeviceKeys, GatewayConnection, PreKeyStatus, connect_gateway
from storage.db import Database
from tests.e2e.process import Serving, relay_process
from tests.factories import Device, new_device
from tests.messaging import pending_is, receive_envelopes, send_numbered
from tests.waiting import until, until_true

_ESTABLISHED = "01"


def _workers(server: Serving) -> list[int]:
    return child_pids(server.process.pid)


def _holder(workers: list[int], server_port: int, client_port: int) -> int:
    """Which worker holds the server side of the connection from ``client_port``."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        if (
            state == _ESTABLISHED
            and int(local.split(":")[1], 16) == server_port
            and int(remote.split(":")[1], 16) == client_port
        ):
            inodes.add(f"socket:[{inode}]")
    for worker in workers:
        fds = Path(f"/proc/{worker}/fd")
        if any(os.readlink(fd) in inodes for fd in fds.iterdir()):
            return worker
    raise AssertionError(f"no worker holds the connection from port {client_port}")


async def _drain(gateway: GatewayConnection) -> None:
    """Read until the connection closes; nothing but pre-key statuses may come first."""
    while True:
        event = await gateway.next_event()
        assert isinstance(event, PreKeyStatus), f"unexpected {event!r}"


async def _sessions_in_every_worker(
    stack: AsyncExitStack, http: httpx.AsyncClient, server: Serving
) -> list[tuple[Device, GatewayConnection, int]]:
    """Devices with open gateways until every worker holds at least one (the kernel
    decides which worker accepts a connection)."""
    workers = _workers(server)
    port = urlsplit(server.api).port
    assert port is not None
    held: list[tuple[Device, GatewayConnection, int]] = []
    for attempt in range(200):
        device = await new_device(http, one_time_pre_keys=25)
        # Which waiting worker the kernel wakes first for a new connection depends on
        # timing; on a loaded machine one can win many times in a row. Let both go back
        # to waiting, for a varying while, before each connection.
        await trio.sleep(0.02 + (attempt % 7) * 0.03)
        gateway = await stack.enter_async_context(connect_gateway(device.client))
        held.append((device, gateway, _holder(workers, port, gateway.websocket.local.port)))
        if {worker for _, _, worker in held} == set(workers):
            return held
    raise AssertionError("every gateway connection went to the same worker")


async def _delivered_to_every_worker(
    held: list[tuple[Device, GatewayConnection, int]], sender: Device, db: Database
) -> None:
    """Whichever worker takes a send, every session is woken, receives and acknowledges."""
    for device, _, _ in held:
        await send_numbered(sender, device, 3)
    for _, gateway, _ in held:
        batches = await receive_envelopes(gateway, 3)
        await gateway.ack([e.id for batch in batches for e in batch])
    for device, _, _ in held:
        await until(lambda device=device: pending_is(db, device, 0), seconds=10)


async def test_workers_share_the_port_and_events_cross_processes(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    with relay_process(tmp_path, database_url, server_workers="2") as server:
        assert len(_workers(server)) == 2
        assert "2 worker processes" in server.startup_log
        async with httpx.AsyncClient(base_url=server.api, timeout=30) as http:
            sender = await new_device(http)
            async with AsyncExitStack() as stack:
                held = await _sessions_in_every_worker(stack, http, server)
                await _delivered_to_every_worker(held, sender, db)

                # A take-over closes the device's sessions in every worker.
                device, _, _ = held[0]
                elsewhere = await stack.enter_async_context(connect_gateway(device.client))
                await device.client.upload_keys(
                    DeviceKeys.generate(one_time_pre_keys=25).upload_json(include_identity=True)
                )
                for gateway in (held[0][1], elsewhere):
                    with trio.fail_after(10), pytest.raises(ConnectionClosed) as closed:
                        await _drain(gateway)
                    assert closed.value.reason.code == 1000

            async with httpx.AsyncClient(base_url=server.management) as management:
                assert (await management.get("/readyz")).status_code == 200

            # Shutdown reaches every worker: open sessions close with 1001.
            async with AsyncExitStack() as stack:
                held = await _sessions_in_every_worker(stack, http, server)
                async with trio.open_nursery() as nursery:

                    async def stop() -> None:
                        log, _ = await trio.to_thread.run_sync(server.stop)
                        assert "relay stopped" in log

                    nursery.start_soon(stop)
                    for _, gateway, _ in held:
                        with trio.fail_after(15), pytest.raises(ConnectionClosed) as closed:
                            await _drain(gateway)
                        assert closed.value.reason.code == 1001


async def test_a_killed_worker_is_restarted_while_the_others_serve(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    with relay_process(tmp_path, database_url, server_workers="2") as server:
        first, second = _workers(server)
        os.kill(second, signal.SIGKILL)
        async with httpx.AsyncClient(base_url=server.api, timeout=30) as http:
            # The survivor serves meanwhile.
            for _ in range(20):
                assert (await http.get("/v1/devices")).status_code == 401

            def replaced() -> bool:
                workers = _workers(server)
                return len(workers) == 2 and first in workers and second not in workers

            await until_true(replaced, seconds=15)
            await until_true(lambda: "worker 2 restarted" in server.startup_log, seconds=15)
            assert "worker 2 (pid" in server.startup_log
            assert "restarting in 0.5 s" in server.startup_log
            # The new worker takes sessions, and events cross to and from it again.
            sender = await new_device(http)
            async with AsyncExitStack() as stack:
                await _delivered_to_every_worker(
                    await _sessions_in_every_worker(stack, http, server), sender, db
                )
            async with httpx.AsyncClient(base_url=server.management) as management:
                readiness = await management.get("/readyz")
                assert readiness.json()["pubsub"] == "ok"
        log, _ = server.stop()
    assert "relay stopped" in log


def test_workers_whose_supervisor_is_killed_stop_at_once(tmp_path: Path, database_url: str) -> None:
    with relay_process(tmp_path, database_url, server_workers="2") as server:
        workers = _workers(server)
        url = urlsplit(server.api)
        assert url.hostname is not None
        assert url.port is not None
        server.process.kill()
        server.process.wait(timeout=10)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in workers)
        # Nothing holds the port open any more: a client is refused, not left waiting.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((url.hostname, url.port), timeout=2).close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
