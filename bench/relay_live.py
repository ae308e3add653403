"""``relay bench relay-live``: N sender/receiver device pairs through the real server.

Every receiver holds a gateway connection and acknowledges each batch as it arrives;
every sender posts its messages one request at a time (so N requests are in flight),
with 1 or 50 submissions per POST. Reported per variant: messages/s from the first POST
to the last delivery, delivery latency p50/p99 (POST sent → envelope received), and
server CPU µs per message (``/proc`` schedstat of the server process). Variants are
interleaved within each repetition.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from typing import Any

import httpx
import trio

from bench import report
from bench.load_client import Connection
from bench.processes import relay_server, server_cpu_seconds
from bench.relay_clients import BenchDevice, address, new_devices, send_request, sequence_of
from relay.client import connect_gateway

RUN_TIMEOUT_SECS = 600


async def one_run(
    api: str,
    pid: int,
    pairs: list[tuple[BenchDevice, BenchDevice]],
    messages_per_pair: int,
    batch: int,
    first_sequence: int,
) -> dict[str, float]:
    """Send ``messages_per_pair`` from each sender to its receiver in POSTs of ``batch``,
    numbered from ``first_sequence`` on.

    Delivery is at least once: an envelope whose acknowledgement was cut off when the
    previous run stopped comes again at the start of this one. Sequence numbers are
    unique across runs, so such an envelope (or any repeat) is acknowledged but not
    counted.
    """
    host, port = address(api)
    requests_per_pair = -(-messages_per_pair // batch)
    total = requests_per_pair * batch * len(pairs)
    plans = []
    for index, (sender, receiver) in enumerate(pairs):
        base = first_sequence + index * requests_per_pair * batch
        plans.append(
            [
                send_request(sender, [receiver.id] * batch, base + request * batch)
                for request in range(requests_per_pair)
            ]
        )
    sent_at: dict[int, int] = {}
    latencies: list[float] = []
    everything = trio.Event()
    ready = trio.Event()
    connected = 0

    async def receive(device: BenchDevice) -> None:
        nonlocal connected
        async with connect_gateway(device.client) as gateway:
            connected += 1
            if connected == len(pairs):
                ready.set()
            async for envelopes in gateway.batches():
                now = time.perf_counter_ns()
                for envelope in envelopes:
                    sent = sent_at.pop(sequence_of(envelope.message), None)
                    if sent is not None:
                        latencies.append((now - sent) / 1e6)
                await gateway.ack([envelope.id for envelope in envelopes])
                if len(latencies) >= total:
                    everything.set()

    async def send(index: int) -> None:
        connection = await Connection.open(host, port)
        try:
            for number, data in enumerate(plans[index]):
                first = first_sequence + index * requests_per_pair * batch + number * batch
                now = time.perf_counter_ns()
                for sequence in range(first, first + batch):
                    sent_at[sequence] = now
                status, _ = await connection.request(data)
                if status != 200:
                    raise RuntimeError(f"POST /v1/messages answered {status}")
        finally:
            await connection.aclose()

    with trio.fail_after(RUN_TIMEOUT_SECS):
        async with trio.open_nursery() as receivers:
            for _, receiver in pairs:
                receivers.start_soon(receive, receiver)
            await ready.wait()
            cpu, started = server_cpu_seconds(pid), time.perf_counter()
            async with trio.open_nursery() as senders:
                for index in range(len(pairs)):
                    senders.start_soon(send, index)
            await everything.wait()
            elapsed, cpu_used = time.perf_counter() - started, server_cpu_seconds(pid) - cpu
            receivers.cancel_scope.cancel()
    return {
        "messages": float(total),
        "messages_per_s": total / elapsed,
        "latency_p50_ms": report.percentile(latencies, 0.50),
        "latency_p99_ms": report.percentile(latencies, 0.99),
        "server_cpu_us_per_message": cpu_used / total * 1e6,
    }


async def run(args: argparse.Namespace, api: str, pid: int) -> list[dict[str, Any]]:
    """Every repetition of every variant."""
    async with httpx.AsyncClient(base_url=api, timeout=60) as http:
        devices = await new_devices(http, 2 * args.pairs)
        pairs = list(zip(devices[::2], devices[1::2], strict=True))
        samples: list[dict[str, Any]] = []
        variants = args.batches
        sequence = 0
        with report.progress("relay-live", args.repetitions * len(variants)) as step:
            for repetition in range(args.repetitions):
                shift = repetition % len(variants)
                for batch in variants[shift:] + variants[:shift]:
                    sample = await one_run(api, pid, pairs, args.messages, batch, sequence)
                    sequence += int(sample["messages"])
                    samples.append(
                        {"variant": f"{batch} per POST", "repetition": repetition, **sample}
                    )
                    step.advance(
                        f"{batch}/POST: {sample['messages_per_s']:,.0f} msg/s, "
                        f"p99 {sample['latency_p99_ms']:.0f} ms"
                    )
        return samples


def main(argv: list[str] | None = None) -> int:
    """Run the scenario and write the report."""
    parser = argparse.ArgumentParser(
        prog="relay bench relay-live", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--pairs", type=int, default=20, help="sender/receiver pairs")
    parser.add_argument("--messages", type=int, default=500, help="messages per pair per run")
    parser.add_argument("--batches", default="1,50", help="submissions per POST, comma-separated")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument(
        "--workers", type=int, default=1, help="server worker processes (RELAY_SERVER_WORKERS)"
    )
    parser.add_argument("--output", default="bench-results")
    parser.add_argument("--quick", action="store_true", help="a tiny run that checks the harness")
    args = parser.parse_args(argv)
    args.batches = [int(item) for item in args.batches.split(",") if item]
    if args.quick:
        args.pairs, args.messages, args.repetitions = 2, 20, 1
    if not (1 <= args.pairs <= 500 and 1 <= args.messages <= 100_000):
        parser.error("pairs must be 1..500 and messages 1..100000")
    if not args.batches or not all(1 <= batch <= 100 for batch in args.batches):
        parser.error("batches must be 1..100 submissions")
    if not 1 <= args.workers <= 16:
        parser.error("workers must be 1..16")
    with (
        tempfile.TemporaryDirectory() as data,
        relay_server({"data_dir": data, "server_workers": str(args.workers)}) as server,
    ):
        samples = trio.run(run, args, server.api, server.pid)
    results = report.by_variant(
        sorted(samples, key=lambda sample: int(sample["variant"].split()[0]))
    )
    report.write(
        args.output,
        "relay-live",
        parameters=vars(args),
        results=results,
        samples=samples,
        panels=(
            report.Panel(
                "delivered messages/s", "messages/s", report.bars(results, "messages_per_s")
            ),
            report.Panel("latency p99", "ms", report.bars(results, "latency_p99_ms")),
            report.Panel(
                "server CPU per message", "µs", report.bars(results, "server_cpu_us_per_message")
            ),
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
