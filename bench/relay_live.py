"""``relay bench relay-live``: N sender/receiver device pairs through the real server.

Every receiver holds a gateway connection and acknowledges each batch as it arrives;
every sender posts its messages one request at a time (so N requests are in flight),
with 1 or 50 submissions per POST. Reported per variant: messages/s from the first POST
to the last delivery, delivery latency p50/p99 (POST sent → envelope received), and
server CPU µs per message (``/proc`` of every server process of the variant). Variants
are interleaved within each repetition.

With ``--nodes N`` (N ≥ 2) three layouts run on one database, side by side: one node with
its in-process hub, one node on a Redis event bus (a private ``redis-server``), and N
nodes on that bus behind haproxy, which names the node that answered each request and
each gateway upgrade; latency is then also reported for same-node and cross-node
deliveries, CPU summed over the N nodes.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import trio

from bench import report
from bench.backing import NODE_HEADER, Backend, haproxy, running_redis
from bench.load_client import Connection
from bench.processes import (
    add_database_option,
    cpu_seconds,
    database_kind,
    relay_server,
    scratch_run,
    server_cpu_seconds,
)
from bench.relay_clients import BenchDevice, address, new_devices, send_request, sequence_of
from relay.client import ObscuraClient, connect_gateway

RUN_TIMEOUT_SECS = 600
LOCAL = "1 node"
ON_BUS = "1 node, Redis bus"


@dataclass(frozen=True)
class Layout:
    """Servers measured together: the URL clients use and the processes whose CPU
    counts (``helpers``: the balancer and Redis, reported on their own)."""

    name: str
    api: str
    servers: tuple[int, ...]
    helpers: tuple[int, ...] = ()

    def server_cpu(self) -> float:
        """CPU seconds of the layout's servers (their worker processes included)."""
        return sum(server_cpu_seconds(pid) for pid in self.servers)

    def helper_cpu(self) -> float:
        """CPU seconds of the balancer and Redis."""
        return sum(cpu_seconds(pid) for pid in self.helpers)


def _node_of(headers: Sequence[tuple[bytes, bytes]] | dict[str, str]) -> str:
    items = headers.items() if isinstance(headers, dict) else headers
    for name, value in items:
        text = name.decode() if isinstance(name, bytes) else name
        if text.lower() == NODE_HEADER:
            return value.decode() if isinstance(value, bytes) else value
    return ""


async def one_run(
    layout: Layout,
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
    host, port = address(layout.api)
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
    latency: dict[int, float] = {}
    # Which node took each POST (by its first sequence) and holds each receiver.
    posted_on: dict[int, str] = {}
    receiver_on: dict[int, str] = {}
    everything = trio.Event()
    ready = trio.Event()
    connected = 0

    async def receive(index: int, http: httpx.AsyncClient, device: BenchDevice) -> None:
        nonlocal connected
        async with connect_gateway(ObscuraClient(http, device.client.session)) as gateway:
            receiver_on[index] = _node_of(gateway.websocket.handshake_headers)
            connected += 1
            if connected == len(pairs):
                ready.set()
            async for envelopes in gateway.batches():
                now = time.perf_counter_ns()
                for envelope in envelopes:
                    sequence = sequence_of(envelope.message)
                    sent = sent_at.pop(sequence, None)
                    if sent is not None:
                        latency[sequence] = (now - sent) / 1e6
                await gateway.ack([envelope.id for envelope in envelopes])
                if len(latency) >= total:
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
                posted_on[first] = _node_of(connection.headers)
        finally:
            await connection.aclose()

    with trio.fail_after(RUN_TIMEOUT_SECS):
        async with (
            httpx.AsyncClient(base_url=layout.api, timeout=60) as http,
            trio.open_nursery() as receivers,
        ):
            for index, (_, receiver) in enumerate(pairs):
                receivers.start_soon(receive, index, http, receiver)
            await ready.wait()
            cpu, helpers = layout.server_cpu(), layout.helper_cpu()
            started = time.perf_counter()
            async with trio.open_nursery() as senders:
                for index in range(len(pairs)):
                    senders.start_soon(send, index)
            await everything.wait()
            elapsed = time.perf_counter() - started
            cpu_used, helpers_used = layout.server_cpu() - cpu, layout.helper_cpu() - helpers
            receivers.cancel_scope.cancel()
    sample = {
        "messages": float(total),
        "messages_per_s": total / elapsed,
        "latency_p50_ms": report.percentile(list(latency.values()), 0.50),
        "latency_p99_ms": report.percentile(list(latency.values()), 0.99),
        "server_cpu_us_per_message": cpu_used / total * 1e6,
    }
    if layout.helpers:
        sample["balancer_and_redis_cpu_us_per_message"] = helpers_used / total * 1e6
    if len(set(posted_on.values()) | set(receiver_on.values())) > 1:
        per_pair = requests_per_pair * batch
        sample.update(_by_node(first_sequence, per_pair, posted_on, receiver_on, latency, batch))
    return sample


def _by_node(
    first_sequence: int,
    per_pair: int,
    posted_on: dict[int, str],
    receiver_on: dict[int, str],
    latency: dict[int, float],
    batch: int,
) -> dict[str, float]:
    """Latency of deliveries within one node and across nodes (pair ``i``'s sequence
    numbers start at ``first_sequence + i * per_pair``)."""
    same: list[float] = []
    cross: list[float] = []
    for first, node in posted_on.items():
        pair = (first - first_sequence) // per_pair
        into = same if node == receiver_on[pair] else cross
        into.extend(latency[s] for s in range(first, first + batch) if s in latency)
    result = {"same_node_share": len(same) / max(1, len(same) + len(cross))}
    for name, values in (("same_node", same), ("cross_node", cross)):
        if values:
            result[f"{name}_p50_ms"] = report.percentile(values, 0.50)
            result[f"{name}_p99_ms"] = report.percentile(values, 0.99)
    return result


async def run(args: argparse.Namespace, layouts: list[Layout], kind: str) -> list[dict[str, Any]]:
    """Every repetition of every variant (layout x submissions per POST)."""
    async with httpx.AsyncClient(base_url=layouts[0].api, timeout=60) as http:
        devices = await new_devices(http, 2 * args.pairs)
    pairs = list(zip(devices[::2], devices[1::2], strict=True))
    samples: list[dict[str, Any]] = []
    variants = [(layout, batch) for layout in layouts for batch in args.batches]
    sequence = 0
    with report.progress("relay-live", args.repetitions * len(variants)) as step:
        for repetition in range(args.repetitions):
            shift = repetition % len(variants)
            for layout, batch in variants[shift:] + variants[:shift]:
                sample = await one_run(layout, pairs, args.messages, batch, sequence)
                sequence += int(sample["messages"])
                name = f"{batch} per POST" if len(layouts) == 1 else f"{batch}/POST, {layout.name}"
                samples.append(
                    {"variant": name, "repetition": repetition, "database": kind, **sample}
                )
                step.advance(
                    f"{name}: {sample['messages_per_s']:,.0f} msg/s, "
                    f"p99 {sample['latency_p99_ms']:.0f} ms"
                )
    return samples


@contextmanager
def layouts(args: argparse.Namespace, root: Path, database_url: str) -> Iterator[list[Layout]]:
    """The servers of the run: one node, or (``--nodes N``) the three layouts."""
    common = {"database_url": database_url, "server_workers": str(args.workers)}
    with ExitStack() as stack:
        local = stack.enter_context(relay_server({**common, "data_dir": str(root / "local")}))
        if args.nodes == 1:
            yield [Layout(LOCAL, local.api, (local.pid,))]
            return
        redis = stack.enter_context(running_redis(root / "redis"))
        assert redis.pid is not None
        bus = {
            **common,
            "pubsub_url": redis.url,
            "push_credentials_key": base64.b64encode(os.urandom(32)).decode(),
        }
        alone = stack.enter_context(relay_server({**bus, "data_dir": str(root / "bus")}))
        nodes = [
            stack.enter_context(relay_server({**bus, "data_dir": str(root / f"node{index}")}))
            for index in range(args.nodes)
        ]
        backends = [Backend(*address(node.api), _port(node.management)) for node in nodes]
        balancer = stack.enter_context(haproxy(root / "haproxy", backends))
        yield [
            Layout(LOCAL, local.api, (local.pid,)),
            Layout(ON_BUS, alone.api, (alone.pid,), (redis.pid,)),
            Layout(
                f"{args.nodes} nodes, Redis bus, haproxy",
                balancer.url,
                tuple(node.pid for node in nodes),
                (balancer.pid, redis.pid),
            ),
        ]


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def _ratios(samples: list[dict[str, Any]], layouts: list[Layout]) -> dict[str, Any]:
    """Within each repetition, at the largest batch: the bus's CPU per message over the
    local hub's, and the cross-node p99 over the same-node p99."""
    if len(layouts) == 1:
        return {}
    batch = max(int(sample["variant"].split("/")[0]) for sample in samples)
    by_repetition: dict[int, dict[str, dict[str, Any]]] = {}
    for sample in samples:
        if sample["variant"].startswith(f"{batch}/POST, "):
            layout = sample["variant"].split(", ", 1)[1]
            by_repetition.setdefault(sample["repetition"], {})[layout] = sample
    bus_cpu = []
    cross_over_same = []
    balanced = layouts[2].name
    for runs in by_repetition.values():
        if runs[LOCAL]["server_cpu_us_per_message"] > 0:
            bus_cpu.append(
                runs[ON_BUS]["server_cpu_us_per_message"] / runs[LOCAL]["server_cpu_us_per_message"]
            )
        nodes = runs[balanced]
        if "cross_node_p99_ms" in nodes and "same_node_p99_ms" in nodes:
            cross_over_same.append(nodes["cross_node_p99_ms"] / nodes["same_node_p99_ms"])
    ratios: dict[str, Any] = {}
    if bus_cpu:
        ratios["bus_vs_local_server_cpu"] = report.summary(bus_cpu)
    if cross_over_same:
        ratios["cross_vs_same_node_p99"] = report.summary(cross_over_same)
    return {f"{batch} per POST ratios": ratios}


DESCRIPTION = (
    "N sender/receiver device pairs through the real server: messages/s, latency, server CPU."
)


def command_line() -> argparse.ArgumentParser:
    """The scenario's options."""
    parser = argparse.ArgumentParser(prog="relay bench relay-live", description=DESCRIPTION)
    parser.add_argument("--pairs", type=int, default=20, help="sender/receiver pairs")
    parser.add_argument("--messages", type=int, default=500, help="messages per pair per run")
    parser.add_argument("--batches", default="1,50", help="submissions per POST, comma-separated")
    report.add_run_options(parser, repetitions=3)
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes per server (RELAY_SERVER_WORKERS)"
    )
    parser.add_argument(
        "--nodes",
        type=int,
        default=1,
        help="N >= 2: also one node on a Redis bus and N nodes behind haproxy (needs "
        "redis-server and haproxy installed)",
    )
    add_database_option(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the scenario and write the report."""
    parser = command_line()
    args = parser.parse_args(argv)
    args.batches = [int(item) for item in args.batches.split(",") if item]
    if args.quick:
        args.pairs, args.messages, args.repetitions = 2, 20, 1
        if args.nodes > 1:
            # Enough messages that every layout's CPU time is many clock ticks: the
            # report divides one layout's by another's.
            args.pairs, args.messages = 2 * args.nodes, 500
    if not (1 <= args.pairs <= 500 and 1 <= args.messages <= 100_000):
        parser.error("pairs must be 1..500 and messages 1..100000")
    if not args.batches or not all(1 <= batch <= 100 for batch in args.batches):
        parser.error("batches must be 1..100 submissions")
    if not 1 <= args.workers <= 16:
        parser.error("workers must be 1..16")
    if not 1 <= args.nodes <= 8:
        parser.error("nodes must be 1..8")
    with (
        scratch_run(args.database_url) as (data, database_url),
        layouts(args, Path(data), database_url) as servers,
    ):
        samples = trio.run(run, args, servers, database_kind(database_url))
    order = {layout.name: index for index, layout in enumerate(servers)}

    def key(sample: dict[str, Any]) -> tuple[int, int]:
        batch, _, layout = sample["variant"].partition("/POST, ")
        return order.get(layout, 0), int(batch.split()[0])

    results: dict[str, Any] = report.by_variant(sorted(samples, key=key))
    variants = dict(results)
    results.update(_ratios(samples, servers))
    report.write(
        args.output,
        "relay-live",
        parameters=vars(args),
        results=results,
        samples=samples,
        panels=(
            report.Panel(
                "delivered messages/s", "messages/s", report.bars(variants, "messages_per_s")
            ),
            report.Panel("latency p99", "ms", report.bars(variants, "latency_p99_ms")),
            report.Panel(
                "server CPU per message", "µs", report.bars(variants, "server_cpu_us_per_message")
            ),
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
