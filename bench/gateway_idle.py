"""``relay bench gateway-idle``: K idle gateway connections.

K devices connect and stay idle; the server's resident memory (every process of it) is
read before and after (``/proc``), giving memory per connection. Then one message is
sent to each device (POSTs of 100 submissions to 100 devices) and the time until every
device received its message is the fan-out time.

A process holds at most as many sockets as its open-file limit (20,000 on the project
machine, and raising the hard limit needs ``CAP_SYS_RESOURCE``), so beyond that both sides
take several processes: the server runs ``--workers`` worker processes sharing the port
(``RELAY_SERVER_WORKERS``), the client ``--client-processes`` holders
(:mod:`bench.idle_holder`). The open-file limit is raised as far as allowed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import resource
import subprocess
import sys
import time
from typing import Any

import httpx
import trio

from bench import idle_holder, report
from bench.load_client import Connection
from bench.processes import (
    add_database_option,
    relay_server,
    scratch_run,
    server_cpu_seconds,
    server_rss_bytes,
)
from bench.relay_clients import BenchDevice, address, new_devices, send_request

RUN_TIMEOUT_SECS = 1800
SETTLE_SECS = 2.0
# Connections a holder process takes, well under the usual 20,000 open-file limit.
CONNECTIONS_PER_HOLDER = 10_000
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


class Holder:
    """One :mod:`bench.idle_holder` process and its devices."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffer = b""

    @classmethod
    async def start(cls, api: str, devices: list[BenchDevice]) -> Holder:
        """Start a holder for ``devices``."""
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "bench.idle_holder"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        sessions = []
        for device in devices:
            session = device.client.session
            assert session is not None
            sessions.append(
                [session.token, session.refresh_token, session.expires_at, str(device.id)]
            )
        assert process.stdin is not None
        plan = json.dumps({"api": api, "sessions": sessions}) + "\n"
        await process.stdin.send_all(plan.encode())
        return cls(process)

    async def said(self, expected: str) -> None:
        """Wait for the holder to report ``expected``."""
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive_some()
            if not chunk:
                raise RuntimeError(f"a gateway holder exited before saying {expected!r}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        if line.decode() != expected:
            raise RuntimeError(f"a gateway holder said {line!r}, not {expected!r}")

    async def stop(self) -> None:
        """Close its connections and wait for it to exit."""
        assert self.process.stdin is not None
        await self.process.stdin.aclose()
        with trio.move_on_after(60):
            await self.process.wait()
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def _all(holders: list[Holder], expected: str) -> None:
    async with trio.open_nursery() as nursery:
        for holder in holders:
            nursery.start_soon(holder.said, expected)


async def one_run(
    api: str, pid: int, sender: BenchDevice, devices: list[BenchDevice], holders: int
) -> dict[str, float]:
    """Connect every device, measure memory, fan one message out to all."""

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

    memory_before = server_rss_bytes(pid)
    started_holders: list[Holder] = []
    with trio.fail_after(RUN_TIMEOUT_SECS):
        try:
            connect_started = time.perf_counter()
            for index in range(holders):
                started_holders.append(await Holder.start(api, devices[index::holders]))
            await _all(started_holders, idle_holder.CONNECTED)
            connect_seconds = time.perf_counter() - connect_started
            await trio.sleep(SETTLE_SECS)
            memory_after = server_rss_bytes(pid)
            cpu, started = server_cpu_seconds(pid), time.perf_counter()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_all, started_holders, idle_holder.RECEIVED)
                async with trio.open_nursery() as senders:
                    for index in range(_SENDERS):
                        senders.start_soon(send, devices[index::_SENDERS])
            fan_out = time.perf_counter() - started
            cpu_used = server_cpu_seconds(pid) - cpu
        finally:
            with trio.CancelScope(shield=True):
                for holder in started_holders:
                    await holder.stop()
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
                sample = await one_run(api, pid, sender, devices, args.client_processes)
                samples.append(
                    {
                        "variant": f"{args.connections} idle, {args.workers} workers",
                        "repetition": repetition,
                        "workers": args.workers,
                        "client_processes": args.client_processes,
                        **sample,
                    }
                )
                step.advance(
                    f"{sample['memory_kb_per_connection']:.1f} KB/conn, "
                    f"fan-out {sample['fan_out_seconds']:.2f} s"
                )
        return samples


DESCRIPTION = (
    "K idle gateway connections: server memory per connection, then the time to reach every one."
)


def command_line() -> argparse.ArgumentParser:
    """The scenario's options."""
    parser = argparse.ArgumentParser(prog="relay bench gateway-idle", description=DESCRIPTION)
    parser.add_argument(
        "--connections", type=int, default=20000, help="idle gateway sessions held open"
    )
    report.add_run_options(parser, repetitions=1)
    parser.add_argument(
        "--workers", type=int, default=2, help="server worker processes (RELAY_SERVER_WORKERS)"
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=0,
        help=f"gateway holder processes (default: one per {CONNECTIONS_PER_HOLDER:,} connections)",
    )
    add_database_option(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the scenario and write the report."""
    parser = command_line()
    args = parser.parse_args(argv)
    if args.quick:
        args.connections, args.repetitions, args.client_processes = 20, 1, 2
    if not 1 <= args.connections <= 60_000:
        parser.error("connections must be 1..60000")
    if not 1 <= args.workers <= 16:
        parser.error("workers must be 1..16")
    if args.client_processes == 0:
        args.client_processes = math.ceil(args.connections / CONNECTIONS_PER_HOLDER)
    if not 1 <= args.client_processes <= args.connections:
        parser.error("client-processes must be 1..connections")
    # Each process needs its share of the connections, plus some for itself.
    needed = math.ceil(args.connections / min(args.workers, args.client_processes)) + 256
    limit = raise_file_limit(needed + 768)
    if limit < needed:
        parser.error(
            f"the open-file limit ({limit}) is too low for {args.connections} connections "
            f"over {args.workers} workers and {args.client_processes} client processes"
        )
    with (
        scratch_run(args.database_url) as (data, database_url),
    ):
        settings = {
            "data_dir": str(data),
            "database_url": database_url,
            "auth_max_devices_per_user": str(args.connections + 1),
            "ws_ping_interval_secs": "60",
            "server_workers": str(args.workers),
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
