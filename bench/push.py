"""Push throughput against the APNs emulator over TLS: our pool next to ``httpx[http2]``
and ``aioapns``.

The emulator runs in a process of its own (``relay emulator apns``), so the CPU time
measured is the client's alone; ``aioapns`` (asyncio) runs in a process of its own too
(:mod:`bench.aioapns_client`). The clients send the same notifications at the same
concurrency, in interleaved repetitions of one run; the report gives pushes/s and client
CPU µs per push, median/min/max over repetitions, and the ratios per repetition.

Run: ``relay bench push [--count N] [--concurrency C] [--repetitions R] [--quick]``
(or ``python -m bench.push``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from bench import report
from bench.processes import Emulator, emulator, run_module
from providers import apns
from providers.apns import ApnsCredentials, ProviderTokenCache
from providers.h2pool import PoolConfig, client_ssl_context, open_pool
from providers.message import PushMessage

_MESSAGE = PushMessage(
    data={"conversation": "c0ffee", "kind": "message"},
    title="New message",
    body="You have a new message from a friend",
    collapse_key="conversation-c0ffee",
)


@dataclass(frozen=True)
class Sample:
    """One client's run."""

    client: str
    pushes: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        """Pushes per second."""
        return self.pushes / self.seconds

    @property
    def cpu_us_per_push(self) -> float:
        """Client CPU per push, in microseconds."""
        return self.cpu_seconds / self.pushes * 1e6


def _credentials(state: Path) -> ApnsCredentials:
    info = json.loads((state / "apns.json").read_text())
    return ApnsCredentials(
        (state / "apns-key.p8").read_bytes(), info["key_id"], info["team_id"], info["bundle_id"]
    )


def _requests(
    credentials: ApnsCredentials, count: int
) -> list[tuple[bytes, list[tuple[bytes, bytes]], bytes]]:
    tokens = ProviderTokenCache()
    provider_token = tokens.token(credentials)
    return [
        apns.build_request(
            _MESSAGE,
            f"{index:064x}",
            topic=credentials.bundle_id,
            provider_token=provider_token,
        )
        for index in range(count)
    ]


async def _drive(count: int, concurrency: int, send: Callable[[int], Awaitable[int]]) -> float:
    """Run ``send(i)`` for every i with ``concurrency`` in flight; returns wall seconds."""
    next_index = 0
    failures = 0

    async def worker() -> None:
        nonlocal next_index, failures
        while next_index < count:
            index = next_index
            next_index += 1
            if await send(index) != 200:
                failures += 1

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    if failures:
        raise RuntimeError(f"{failures} pushes failed")
    return time.perf_counter() - started


async def run_pool(url: str, ca: str, requests: list, concurrency: int, connections: int) -> Sample:  # type: ignore[type-arg]
    """Our pool."""
    config = PoolConfig(connections=connections, max_streams_per_connection=250)
    async with open_pool(url, config=config, ssl_context=client_ssl_context(ca)) as pool:
        await pool.request(*requests[0])  # connect outside the measurement

        async def send(index: int) -> int:
            return (await pool.request(*requests[index])).status

        cpu = time.process_time()
        seconds = await _drive(len(requests), concurrency, send)
        return Sample("pool", len(requests), seconds, time.process_time() - cpu)


async def run_httpx(url: str, ca: str, requests: list, concurrency: int) -> Sample:  # type: ignore[type-arg]
    """``httpx.AsyncClient(http2=True)``, the obvious alternative."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        http2=True, verify=client_ssl_context(ca), limits=limits, timeout=60
    ) as client:
        path, headers, body = requests[0]
        await client.post(url + path.decode(), headers=headers, content=body)

        async def send(index: int) -> int:
            path, headers, body = requests[index]
            response = await client.post(url + path.decode(), headers=headers, content=body)
            return response.status_code

        cpu = time.process_time()
        seconds = await _drive(len(requests), concurrency, send)
        return Sample("httpx", len(requests), seconds, time.process_time() - cpu)


def run_aioapns(emulator: Emulator, count: int, concurrency: int, connections: int) -> Sample:
    """``aioapns`` (asyncio) in a process of its own, measured there."""
    output = run_module(
        "bench.aioapns_client",
        "--url",
        emulator.url,
        "--ca",
        emulator.ca_file,
        "--state",
        str(emulator.state),
        "--count",
        str(count),
        "--concurrency",
        str(concurrency),
        "--connections",
        str(connections),
        settings={},
        timeout=600,
    )
    sample = json.loads(output.strip().splitlines()[-1])
    return Sample("aioapns", sample["pushes"], sample["seconds"], sample["cpu_seconds"])


CLIENTS = ("pool", "httpx", "aioapns")


DESCRIPTION = (
    "Push throughput against the APNs emulator over TLS: our pool next to httpx[http2] and aioapns."
)


def command_line() -> argparse.ArgumentParser:
    """The scenario's options."""
    parser = argparse.ArgumentParser(prog="relay bench push", description=DESCRIPTION)
    parser.add_argument("--count", type=int, default=10000, help="pushes per client per repetition")
    parser.add_argument("--concurrency", type=int, default=500, help="pushes in flight per client")
    parser.add_argument("--connections", type=int, default=1, help="connections per client")
    report.add_run_options(parser, repetitions=3)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and write the report."""
    parser = command_line()
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.repetitions, args.concurrency = 200, 1, 50
    if not 1 <= args.count <= 200_000 or not 1 <= args.repetitions <= 20:
        parser.error("count must be 1..200000 and repetitions 1..20")

    samples: list[Sample] = []
    with tempfile.TemporaryDirectory() as tmp, emulator("apns", Path(tmp)) as running:
        requests = _requests(_credentials(running.state), args.count)
        with report.progress("push", args.repetitions * len(CLIENTS)) as step:
            for repetition in range(args.repetitions):
                # Interleaved, in a rotating order: a noisy neighbour hits every client.
                shift = repetition % len(CLIENTS)
                for client in CLIENTS[shift:] + CLIENTS[:shift]:
                    if client == "pool":
                        sample = trio.run(
                            run_pool,
                            running.url,
                            running.ca_file,
                            requests,
                            args.concurrency,
                            args.connections,
                        )
                    elif client == "httpx":
                        sample = trio.run(
                            run_httpx, running.url, running.ca_file, requests, args.concurrency
                        )
                    else:
                        sample = run_aioapns(
                            running, args.count, args.concurrency, args.connections
                        )
                    samples.append(sample)
                    step.advance(
                        f"rep {repetition + 1} {client}: {sample.rate:,.0f}/s, "
                        f"{sample.cpu_us_per_push:,.0f} µs CPU/push"
                    )

    by_client = {name: [s for s in samples if s.client == name] for name in CLIENTS}
    results: dict[str, Any] = {
        name: {
            "pushes_per_s": report.summary([s.rate for s in runs]),
            "cpu_us_per_push": report.summary([s.cpu_us_per_push for s in runs]),
        }
        for name, runs in by_client.items()
    }
    for other in ("httpx", "aioapns"):
        pairs = list(zip(by_client["pool"], by_client[other], strict=True))
        results[f"pool_vs_{other}"] = {
            "pushes_per_s": report.summary([p.rate / o.rate for p, o in pairs]),
            "cpu_per_push": report.summary(
                [o.cpu_us_per_push / p.cpu_us_per_push for p, o in pairs]
            ),
        }
    clients = {name: results[name] for name in CLIENTS}
    report.write(
        args.output,
        "push",
        parameters=vars(args),
        results=results,
        samples=[
            asdict(s) | {"rate": s.rate, "cpu_us_per_push": s.cpu_us_per_push} for s in samples
        ],
        panels=(
            report.Panel(
                "pushes/s (APNs emulator, TLS)", "pushes/s", report.bars(clients, "pushes_per_s")
            ),
            report.Panel("client CPU per push", "µs", report.bars(clients, "cpu_us_per_push")),
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
