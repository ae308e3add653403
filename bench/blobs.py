"""``relay bench blobs``: a 16 MiB attachment uploaded and downloaded through the relay
to S3 (moto's server), next to the same transfer straight to S3.

Both variants stream in 64 KiB chunks over httpx: straight to S3 through the relay's
own S3 store (one SigV4-signed PUT with its length, then a GET), through the relay with
the client SDK (``POST /v1/attachments``, then ``GET``), which the server streams to the
same bucket. Reported per variant: MiB/s up, down and for the round trip; for the relay
its server CPU per MiB; and, within each repetition, the relay's round-trip rate over
the direct one (the relay's own overhead). Variants alternate within each repetition.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import trio

from bench import report
from bench.backing import moto_server, new_bucket
from bench.processes import (
    add_database_option,
    relay_server,
    scratch_run,
    server_cpu_seconds,
)
from bench.relay_clients import BenchDevice, new_devices
from storage.blobs import CHUNK_BYTES
from storage.s3.store import S3BlobStore, S3Config

MIB = 1024 * 1024
RUN_TIMEOUT_SECS = 300
DIRECT = "straight to S3"
RELAYED = "through the relay"


async def _chunks(content: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(content), CHUNK_BYTES):
        yield content[start : start + CHUNK_BYTES]


async def direct(store: S3BlobStore, content: bytes) -> dict[str, float]:
    """Upload and download ``content`` with the S3 store the relay uses."""
    key = f"attachments/bench-{uuid.uuid4().hex}"
    started = time.perf_counter()
    async with store.upload(key, len(content)) as upload:
        async for chunk in _chunks(content):
            await upload.write(chunk)
        await upload.commit()
    uploaded = time.perf_counter()
    received = 0
    async with store.open(key) as blob:
        assert blob is not None
        async for chunk in blob.chunks():
            received += len(chunk)
    downloaded = time.perf_counter()
    if received != len(content):
        raise RuntimeError(f"S3 returned {received} of {len(content)} bytes")
    await store.delete(key)
    return _rates(len(content), started, uploaded, downloaded)


async def relayed(device: BenchDevice, pid: int, content: bytes) -> dict[str, float]:
    """Upload and download ``content`` as an attachment through the relay."""
    cpu = server_cpu_seconds(pid)
    started = time.perf_counter()
    attachment = await device.client.upload_attachment(_chunks(content), size=len(content))
    uploaded = time.perf_counter()
    received = 0
    async with device.client.stream_attachment(attachment.id) as chunks:
        async for chunk in chunks:
            received += len(chunk)
    downloaded = time.perf_counter()
    used = server_cpu_seconds(pid) - cpu
    if received != len(content):
        raise RuntimeError(f"the relay returned {received} of {len(content)} bytes")
    rates = _rates(len(content), started, uploaded, downloaded)
    rates["server_cpu_ms_per_mib"] = used * 1000 / (len(content) / MIB)
    return rates


def _rates(size: int, started: float, uploaded: float, downloaded: float) -> dict[str, float]:
    mib = size / MIB
    return {
        "upload_mib_per_s": mib / (uploaded - started),
        "download_mib_per_s": mib / (downloaded - uploaded),
        "round_trip_mib_per_s": 2 * mib / (downloaded - started),
    }


async def run(
    args: argparse.Namespace, api: str, pid: int, bucket: S3Config
) -> list[dict[str, Any]]:
    """Every repetition of both variants."""
    content = os.urandom(args.size_mib * MIB)
    samples: list[dict[str, Any]] = []
    store = S3BlobStore(bucket)
    try:
        async with httpx.AsyncClient(base_url=api, timeout=120) as http:
            [device] = await new_devices(http, 1)
            with (
                trio.fail_after(RUN_TIMEOUT_SECS * args.repetitions),
                report.progress("blobs", 2 * args.repetitions) as step,
            ):
                for repetition in range(args.repetitions):
                    order = [DIRECT, RELAYED] if repetition % 2 == 0 else [RELAYED, DIRECT]
                    for variant in order:
                        if variant == DIRECT:
                            sample = await direct(store, content)
                        else:
                            sample = await relayed(device, pid, content)
                        samples.append({"variant": variant, "repetition": repetition, **sample})
                        step.advance(f"{variant}: {sample['round_trip_mib_per_s']:.1f} MiB/s")
    finally:
        await store.aclose()
    return samples


DESCRIPTION = (
    "A 16 MiB attachment up and down through the relay to S3 (moto), next to the same "
    "transfer straight to S3."
)


def command_line() -> argparse.ArgumentParser:
    """The scenario's options."""
    parser = argparse.ArgumentParser(prog="relay bench blobs", description=DESCRIPTION)
    parser.add_argument("--size-mib", type=int, default=16, help="attachment size in MiB")
    report.add_run_options(parser, repetitions=5)
    add_database_option(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the scenario and write the report."""
    parser = command_line()
    args = parser.parse_args(argv)
    if args.quick:
        args.size_mib, args.repetitions = 1, 1
    if not (1 <= args.size_mib <= 256 and 1 <= args.repetitions <= 50):
        parser.error("size-mib must be 1..256 and repetitions 1..50")
    with (
        scratch_run(args.database_url) as (data, database_url),
        moto_server() as endpoint,
    ):
        bucket = new_bucket(endpoint)
        settings = {
            "data_dir": str(data),
            "database_url": database_url,
            "blob_store": "s3",
            "storage_bucket": bucket.bucket,
            "storage_region": bucket.region,
            "storage_endpoint": endpoint,
            "storage_access_key": bucket.access_key,
            "storage_secret_key": bucket.secret_key,
            "storage_force_path_style": "true",
            "attachment_max_size_bytes": str(args.size_mib * MIB),
        }
        with relay_server(settings) as server:
            samples = trio.run(run, args, server.api, server.pid, bucket)
    results: dict[str, Any] = report.by_variant(samples)
    variants = dict(results)
    by_repetition: dict[int, dict[str, float]] = {}
    for sample in samples:
        by_repetition.setdefault(sample["repetition"], {})[sample["variant"]] = sample[
            "round_trip_mib_per_s"
        ]
    results["relay_vs_direct"] = {
        "round_trip_mib_per_s": report.summary(
            [rates[RELAYED] / rates[DIRECT] for rates in by_repetition.values()]
        )
    }
    report.write(
        args.output,
        "blobs",
        parameters=vars(args),
        results=results,
        samples=samples,
        panels=(
            report.Panel(
                "upload + download", "MiB/s", report.bars(variants, "round_trip_mib_per_s")
            ),
            report.Panel("upload", "MiB/s", report.bars(variants, "upload_mib_per_s")),
            report.Panel("download", "MiB/s", report.bars(variants, "download_mib_per_s")),
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
