"""Push throughput against the APNs emulator over TLS: our pool next to ``httpx[http2]``.

The emulator runs in a process of its own (``relay emulator apns``), so the CPU time
measured here is the client's alone. Both clients send the same requests (built by
:mod:`providers.apns`, with a cached ES256 provider token) at the same concurrency, in
interleaved repetitions of one run; the report gives pushes/s and client CPU µs per
push, median/min/max over repetitions, and the ratio per repetition.

Run: ``relay bench push [--count N] [--concurrency C] [--repetitions R] [--quick]``
(or ``python -m bench.push``).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import trio

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


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and write a JSON report."""
    parser = argparse.ArgumentParser(prog="relay bench push", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000, help="pushes per client per repetition")
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--connections", type=int, default=1, help="pool connections")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--output", default="bench-results")
    parser.add_argument(
        "--quick", action="store_true", help="a tiny run that checks the harness (CI)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.repetitions, args.concurrency = 200, 1, 50
    if not 1 <= args.count <= 200_000 or not 1 <= args.repetitions <= 20:
        parser.error("count must be 1..200000 and repetitions 1..20")

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        emulator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "relay",
                "emulator",
                "apns",
                "--port",
                "0",
                "--state-dir",
                str(state),
                "--no-record",
            ],
            stdout=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        try:
            assert emulator.stdout is not None
            match = re.search(r"on (https://\S+)", emulator.stdout.readline())
            if match is None:
                raise SystemExit("the emulator did not start")
            url, ca = (
                match.group(1).replace("127.0.0.1", "localhost"),
                str(state / "emulator-cert.pem"),
            )
            requests = _requests(_credentials(state), args.count)
            samples: list[Sample] = []
            for repetition in range(args.repetitions):
                for client in ("pool", "httpx") if repetition % 2 == 0 else ("httpx", "pool"):
                    if client == "pool":
                        sample = trio.run(
                            run_pool, url, ca, requests, args.concurrency, args.connections
                        )
                    else:
                        sample = trio.run(run_httpx, url, ca, requests, args.concurrency)
                    samples.append(sample)
                    print(
                        f"rep {repetition + 1} {client:5}: {sample.rate:8.0f} pushes/s, "
                        f"{sample.cpu_us_per_push:6.0f} µs CPU/push",
                        flush=True,
                    )
        finally:
            emulator.terminate()
            emulator.wait(timeout=30)

    pool = [s for s in samples if s.client == "pool"]
    other = [s for s in samples if s.client == "httpx"]
    report = {
        "scenario": "push",
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "parameters": vars(args),
        "pool": {
            "pushes_per_s": _summary([s.rate for s in pool]),
            "cpu_us_per_push": _summary([s.cpu_us_per_push for s in pool]),
        },
        "httpx": {
            "pushes_per_s": _summary([s.rate for s in other]),
            "cpu_us_per_push": _summary([s.cpu_us_per_push for s in other]),
        },
        "ratio_pushes_per_s": _summary([p.rate / h.rate for p, h in zip(pool, other, strict=True)]),
        "ratio_cpu_per_push": _summary(
            [h.cpu_us_per_push / p.cpu_us_per_push for p, h in zip(pool, other, strict=True)]
        ),
        "samples": [
            asdict(s) | {"rate": s.rate, "cpu_us_per_push": s.cpu_us_per_push} for s in samples
        ],
    }
    out = Path(args.output)
    out.mkdir(exist_ok=True)
    path = out / f"push-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(
        json.dumps(
            {k: report[k] for k in ("pool", "httpx", "ratio_pushes_per_s", "ratio_cpu_per_push")},
            indent=2,
        )
    )
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
