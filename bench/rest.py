"""``relay bench rest``: requests/s of ``POST /v1/messages`` next to a bare Quart-Trio
route served the same way (:mod:`bench.bare_server`).

Both servers run in processes of their own with the same hypercorn configuration; C
keep-alive connections each send their requests one after another (bodies built before
the clock starts: one 256-byte submission, a fresh idempotency key each). Reported:
requests/s, server CPU µs per request, and per repetition the ratio messages/bare.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import trio

from bench import report
from bench.load_client import Connection, request_bytes
from bench.processes import (
    StartError,
    add_database_option,
    cpu_seconds,
    environment,
    relay_server,
    scratch_run,
)
from bench.relay_clients import address, new_devices, send_request

_BARE = re.compile(r"bare listening: (\S+)")


@contextlib.contextmanager
def bare_server() -> Iterator[tuple[str, int]]:
    """The bare route's server: its URL and pid."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bare_server"],
        env=environment({"log_level": "warning"}),
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        match = _BARE.search(process.stdout.readline())
        if match is None:
            raise StartError("the bare server did not start")
        yield match.group(1), process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


async def load(api: str, pid: int, plans: list[list[bytes]]) -> dict[str, float]:
    """Send every plan over its own connection, all at once."""
    host, port = address(api)
    total = sum(len(plan) for plan in plans)

    async def connection_loop(plan: list[bytes]) -> None:
        connection = await Connection.open(host, port)
        try:
            for data in plan:
                status, _ = await connection.request(data)
                if status != 200:
                    raise RuntimeError(f"{api} answered {status}")
        finally:
            await connection.aclose()

    cpu, started = cpu_seconds(pid), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for plan in plans:
            nursery.start_soon(connection_loop, plan)
    elapsed, used = time.perf_counter() - started, cpu_seconds(pid) - cpu
    return {"requests_per_s": total / elapsed, "server_cpu_us_per_request": used / total * 1e6}


async def run(
    args: argparse.Namespace, relay: tuple[str, int], bare: tuple[str, int]
) -> list[dict[str, Any]]:
    """Interleaved repetitions of both variants."""
    api, relay_pid = relay
    async with httpx.AsyncClient(base_url=api, timeout=60) as http:
        sender, receiver = await new_devices(http, 2)
    per_connection = args.requests // args.connections
    samples: list[dict[str, Any]] = []
    variants = ("POST /v1/messages", "bare Quart-Trio route")
    with report.progress("rest", args.repetitions * 2) as step:
        for repetition in range(args.repetitions):
            for variant in variants if repetition % 2 == 0 else variants[::-1]:
                if variant == variants[0]:
                    plans = [
                        [send_request(sender, [receiver.id], 0) for _ in range(per_connection)]
                        for _ in range(args.connections)
                    ]
                    sample = await load(api, relay_pid, plans)
                else:
                    body = bytes(300)
                    data = request_bytes(
                        "POST", "/bare", {"content-type": "application/x-protobuf"}, body
                    )
                    plans = [[data] * per_connection for _ in range(args.connections)]
                    sample = await load(bare[0], bare[1], plans)
                samples.append({"variant": variant, "repetition": repetition, **sample})
                step.advance(f"{variant}: {sample['requests_per_s']:,.0f} req/s")
    return samples


DESCRIPTION = "Requests/s of POST /v1/messages next to a bare Quart-Trio route served the same way."


def command_line() -> argparse.ArgumentParser:
    """The scenario's options."""
    parser = argparse.ArgumentParser(prog="relay bench rest", description=DESCRIPTION)
    parser.add_argument("--requests", type=int, default=6000, help="requests per variant per run")
    parser.add_argument("--connections", type=int, default=50, help="keep-alive client connections")
    report.add_run_options(parser, repetitions=3)
    add_database_option(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the scenario and write the report."""
    parser = command_line()
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.connections, args.repetitions = 100, 5, 1
    if not (1 <= args.connections <= 500 and args.connections <= args.requests <= 1_000_000):
        parser.error("connections must be 1..500 and requests connections..1000000")
    with (
        scratch_run(args.database_url) as (data, database_url),
        relay_server(
            {
                "data_dir": str(data),
                "database_url": database_url,
                "messaging_inbox_max_size": "1000000",
            }
        ) as server,
        bare_server() as bare,
    ):
        samples = trio.run(run, args, (server.api, server.pid), bare)
    results: dict[str, Any] = report.by_variant(samples)
    by_repetition: dict[int, dict[str, float]] = {}
    for sample in samples:
        by_repetition.setdefault(sample["repetition"], {})[sample["variant"]] = sample[
            "requests_per_s"
        ]
    results["messages_vs_bare"] = {
        "requests_per_s": report.summary(
            [
                values["POST /v1/messages"] / values["bare Quart-Trio route"]
                for values in by_repetition.values()
            ]
        )
    }
    variants = {k: v for k, v in results.items() if k != "messages_vs_bare"}
    report.write(
        args.output,
        "rest",
        parameters=vars(args),
        results=results,
        samples=samples,
        panels=(
            report.Panel("requests/s", "requests/s", report.bars(variants, "requests_per_s")),
            report.Panel(
                "server CPU per request", "µs", report.bars(variants, "server_cpu_us_per_request")
            ),
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
