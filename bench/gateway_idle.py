"""``relay bench gateway-idle``: K idle gateway connections.

K devices connect and stay idle; the server's resident memory is read before and after
(``/proc``), giving memory per connection. Then one message is sent to each device (POSTs
of 100 submissions to 100 devices) and the time until every device received its message
is the fan-out time. The open-file limit is raised for this process and the server (the
hard limit too, when running as root).
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import tempfile
import time
from typing import Any

import httpx
import trio

from bench import report
from bench.http1 import Connection
from bench.processes import cpu_seconds, relay_server, rss_bytes
from bench.relay_clients import BenchDevice, address, new_devices, send_request
from relay.client import connect_gateway

RUN_TIMEOUT_SECS = 1800
CONNECT_CONCURRENCY = 64
SETTLE_SECS = 2.0
_POST_BATCH = 100
_SENDERS = 4


def raise_file_limit(wanted: int) -> int:
    """Raise RLIMIT_NOFILE towards ``wanted`` (children inherit it); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
    target = min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return max(soft, target)


async def one_run(
    api: str, pid: int, sender: BenchDevice, devices: list[BenchDevice]
) -> dict[str, float]:
    """Connect every device, measure memory, fan one message out to all."""
    connected = 0
    received = 0
    all_connected = trio.Event()
    all_received = trio.Event()
    limiter = trio.CapacityLimiter(CONNECT_CONCURRENCY)
    memory_before = rss_bytes(pid)

    async def hold(device: BenchDevice) -> None:
        nonlocal connected, received
        async with limiter:
            context = connect_gateway(device.client)
            gateway = await context.__aenter__()
        try:
            connected += 1
            if connected == len(devices):
                all_connected.set()
            async for envelopes in gateway.batches():
                await gateway.ack([envelope.id for envelope in envelopes])
                received += len(envelopes)
                if received >= len(devices):
                    all_received.set()
        finally:
            with trio.CancelScope(shield=True), contextlib.suppress(Exception):
                await context.__aexit__(None, None, None)

    async def send(part: list[BenchDevice]) -> None:
        host, port = address(api)
        connection = await Connection.open(host, port)
        try:
            for start in range(0, len(part), _POST_BATCH):
                targets = [device.id for device in part[start : start + _POST_BATCH]]
                status, _ = await connection.request(send_request(sender, targets, start))
                if status != 200:
                    raise RuntimeError(f"POST /v1/messages answered {status}")
        finally:
            await connection.aclose()

    with trio.fail_after(RUN_TIMEOUT_SECS):
        async with trio.open_nursery() as nursery:
            connect_started = time.perf_counter()
            for device in devices:
                nursery.start_soon(hold, device)
            await all_connected.wait()
            connect_seconds = time.perf_counter() - connect_started
            await trio.sleep(SETTLE_SECS)
            memory_after = rss_bytes(pid)
            cpu, started = cpu_seconds(pid), time.perf_counter()
            async with trio.open_nursery() as senders:
                for index in range(_SENDERS):
                    senders.start_soon(send, devices[index::_SENDERS])
            await all_received.wait()
            fan_out = time.perf_counter() - started
            cpu_used = cpu_seconds(pid) - cpu
            nursery.cancel_scope.cancel()
    count = len(devices)
    return {
        "connections": float(count),
        "memory_kb_per_connection": (memory_after - memory_before) / count / 1024,
        "server_rss_mb": memory_after / 2**20,
        "connect_per_s": count / connect_seconds,
        "fan_out_seconds": fan_out,
        "fan_out_messages_per_s": count / fan_out,
        "server_cpu_us_per_delivery": cpu_used / count * 1e6,
    }


async def run(args: argparse.Namespace, api: str, pid: int) -> list[dict[str, Any]]:
    """Every repetition (the same devices reconnect each time)."""
    async with httpx.AsyncClient(base_url=api, timeout=120) as http:
        sender, *devices = await new_devices(http, args.connections + 1, per_account=1000)
        samples = []
        with report.progress("gateway-idle", args.repetitions) as step:
            for repetition in range(args.repetitions):
                sample = await one_run(api, pid, sender, devices)
                samples.append(
                    {"variant": f"{args.connections} idle", "repetition": repetition, **sample}
                )
                step.advance(
                    f"{sample['memory_kb_per_connection']:.1f} KB/conn, "
                    f"fan-out {sample['fan_out_seconds']:.2f} s"
                )
        return samples


def main(argv: list[str] | None = None) -> int:
    """Run the scenario and write the report."""
    parser = argparse.ArgumentParser(
        prog="relay bench gateway-idle", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--connections", type=int, default=20000)
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--output", default="bench-results")
    parser.add_argument("--quick", action="store_true", help="a tiny run that checks the harness")
    args = parser.parse_args(argv)
    if args.quick:
        args.connections, args.repetitions = 20, 1
    if not 1 <= args.connections <= 60_000:
        parser.error("connections must be 1..60000")
    limit = raise_file_limit(args.connections + 1024)
    if limit < args.connections + 256:
        parser.error(f"the open-file limit ({limit}) is too low for {args.connections} connections")
    with tempfile.TemporaryDirectory() as data:
        settings = {
            "data_dir": data,
            "auth_max_devices_per_user": str(args.connections + 1),
            "ws_ping_interval_secs": "60",
        }
        with relay_server(settings) as server:
            samples = trio.run(run, args, server.api, server.pid)
    results = report.by_variant(samples)
    report.write(
        args.output,
        "gateway-idle",
        parameters=vars(args),
        results=results,
        samples=samples,
        panels=(
            report.Panel(
                "server memory per idle connection",
                "KB",
                report.bars(results, "memory_kb_per_connection"),
            ),
            report.Panel(
                "one message to every connection", "s", report.bars(results, "fan_out_seconds")
            ),
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
