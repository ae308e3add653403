"""``relay bench relay-drain``: a backlog of M messages per device, delivered,
acknowledged and deleted.

The backlog is queued first (POSTs of 100 submissions); then every device connects at
once and acknowledges each batch as it arrives. The clock runs from the connections
until the ``messages`` table is empty (read from the server's database, SQLite or
PostgreSQL), so messages/s counts delivered, acknowledged *and* deleted messages.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from typing import Any

import httpx
import trio
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bench import report
from bench.load_client import Connection
from bench.processes import (
    add_database_option,
    cpu_seconds,
    database_kind,
    relay_server,
    scratch_run,
)
from bench.relay_clients import BenchDevice, address, new_devices, send_request
from obscura_proto.obscura.v1 import Envelope, EnvelopeBatch, WebSocketFrame
from relay import wire
from relay.client import connect_gateway
from relay.gateway.session import envelope_parts
from storage.db import PoolOptions, create_engine
from storage.ids import now_us, uuid7
from storage.repos.messages import PendingMessage
from storage.schema import messages

RUN_TIMEOUT_SECS = 900
_POST_BATCH = 100
_FRAME = 50  # envelopes per frame, the gateway's page size


def envelope_encoding_us(count: int = 20000) -> dict[str, float]:
    """µs per envelope of the delivery path's encoder and of betterproto2, on the same
    256-byte envelopes in frames of 50 (the bytes are identical; ``tests/`` cross-checks
    them)."""
    sent_at = now_us()
    pending = [
        PendingMessage(
            uuid7().bytes, uuid.uuid4().bytes, uuid.uuid4().bytes, os.urandom(256), sent_at
        )
        for _ in range(count)
    ]
    started = time.perf_counter()
    for first in range(0, count, _FRAME):
        wire.split_into_frames(
            [envelope_parts(m) for m in pending[first : first + _FRAME]], max_batch_bytes=1 << 23
        )
    ours = (time.perf_counter() - started) / count * 1e6
    typed = [
        Envelope(
            id=m.id,
            sender_id=m.sender_id,
            timestamp=m.created_at // 1000,
            message=m.content,
            sender_device_id=m.sender_device_id,
        )
        for m in pending[:2000]
    ]
    started = time.perf_counter()
    for first in range(0, len(typed), _FRAME):
        bytes(WebSocketFrame(envelope_batch=EnvelopeBatch(envelopes=typed[first : first + _FRAME])))
    reference = (time.perf_counter() - started) / len(typed) * 1e6
    return {"envelope_encode_us": ours, "betterproto2_encode_us": reference}


def stored_messages(engine: Engine) -> int:
    """Rows in the server's ``messages`` table."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(messages)).scalar_one())


async def fill(api: str, sender: BenchDevice, devices: list[BenchDevice], backlog: int) -> None:
    """Queue ``backlog`` messages for every device."""
    host, port = address(api)
    connection = await Connection.open(host, port)
    try:
        for device in devices:
            for start in range(0, backlog, _POST_BATCH):
                count = min(_POST_BATCH, backlog - start)
                status, _ = await connection.request(
                    send_request(sender, [device.id] * count, start)
                )
                if status != 200:
                    raise RuntimeError(f"POST /v1/messages answered {status}")
    finally:
        await connection.aclose()


async def drain(
    pid: int, database: Engine, devices: list[BenchDevice], total: int
) -> dict[str, float]:
    """Connect every device and acknowledge until the table is empty."""
    received = 0
    frames = 0
    all_received = trio.Event()
    cpu, started = cpu_seconds(pid), time.perf_counter()

    async def receive(device: BenchDevice) -> None:
        nonlocal received, frames
        async with connect_gateway(device.client) as gateway:
            async for envelopes in gateway.batches():
                received += len(envelopes)
                frames += 1
                await gateway.ack([envelope.id for envelope in envelopes])
                if received >= total:
                    all_received.set()

    with trio.fail_after(RUN_TIMEOUT_SECS):
        async with trio.open_nursery() as nursery:
            for device in devices:
                nursery.start_soon(receive, device)
            await all_received.wait()
            delivered = time.perf_counter() - started
            # The acknowledged rows are deleted in batches by the server: poll the table.
            while await trio.to_thread.run_sync(stored_messages, database):  # noqa: ASYNC110
                await trio.sleep(0.01)
            elapsed, cpu_used = time.perf_counter() - started, cpu_seconds(pid) - cpu
            nursery.cancel_scope.cancel()
    return {
        "messages": float(total),
        "messages_per_s": total / elapsed,
        "delivered_per_s": total / delivered,
        "envelopes_per_frame": total / max(frames, 1),
        "server_cpu_us_per_message": cpu_used / total * 1e6,
    }


async def run(
    args: argparse.Namespace, api: str, pid: int, database: Engine, kind: str
) -> list[dict[str, Any]]:
    """Every repetition."""
    async with httpx.AsyncClient(base_url=api, timeout=60) as http:
        sender, *devices = await new_devices(http, args.devices + 1)
        samples = []
        with report.progress("relay-drain", args.repetitions) as step:
            for repetition in range(args.repetitions):
                await fill(api, sender, devices, args.backlog)
                sample = await drain(pid, database, devices, args.backlog * args.devices)
                sample.update(envelope_encoding_us())
                samples.append({"variant": kind, "repetition": repetition, **sample})
                step.advance(f"{sample['messages_per_s']:,.0f} msg/s")
        return samples


DESCRIPTION = "A backlog of M messages per device, delivered, acknowledged and deleted."


def command_line() -> argparse.ArgumentParser:
    """The scenario's options."""
    parser = argparse.ArgumentParser(prog="relay bench relay-drain", description=DESCRIPTION)
    parser.add_argument("--devices", type=int, default=20, help="receiving devices")
    parser.add_argument("--backlog", type=int, default=2500, help="messages queued per device")
    report.add_run_options(parser, repetitions=3)
    add_database_option(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the scenario and write the report."""
    parser = command_line()
    args = parser.parse_args(argv)
    if args.quick:
        args.devices, args.backlog, args.repetitions = 2, 60, 1
    if not (1 <= args.devices <= 1000 and 1 <= args.backlog <= 100_000):
        parser.error("devices must be 1..1000 and backlog 1..100000")
    with (
        scratch_run(args.database_url) as (data, database_url),
    ):
        # The inbox cap must not prune the backlog being measured.
        settings = {
            "data_dir": str(data),
            "database_url": database_url,
            "messaging_inbox_max_size": str(args.backlog + 1),
        }
        with relay_server(settings) as server:
            engine = create_engine(database_url, PoolOptions(max_connections=1))
            try:
                samples = trio.run(
                    run, args, server.api, server.pid, engine, database_kind(database_url)
                )
            finally:
                engine.dispose()
    results = report.by_variant(samples)
    report.write(
        args.output,
        "relay-drain",
        parameters=vars(args),
        results=results,
        samples=samples,
        panels=(
            report.Panel(
                "delivered, acked and deleted", "messages/s", report.bars(results, "messages_per_s")
            ),
            report.Panel(
                "server CPU per message", "µs", report.bars(results, "server_cpu_us_per_message")
            ),
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
