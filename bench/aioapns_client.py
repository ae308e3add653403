"""The ``aioapns`` baseline of ``relay bench push``: asyncio, so it runs in a process of
its own. Prints one JSON sample (pushes, seconds, cpu_seconds) on standard output.

``aioapns`` hard-codes Apple's host; :class:`_LocalPool` overrides its private
``_create_connection`` to reach the emulator on loopback (with ALPN ``h2``), the only
change made to the library.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aioapns import APNs, NotificationRequest, PushType
from aioapns.connection import APNsBaseClientProtocol, APNsKeyConnectionPool


class _LocalPool(APNsKeyConnectionPool):
    host = "localhost"
    port = 443

    async def _create_connection(  # type: ignore[no-untyped-def]
        self, apns_protocol_factory
    ) -> APNsBaseClientProtocol:
        assert self.loop is not None
        _, protocol = await self.loop.create_connection(
            protocol_factory=apns_protocol_factory,
            host=self.host,
            port=self.port,
            ssl=self.ssl_context,
        )
        assert isinstance(protocol, APNsBaseClientProtocol)
        return protocol


async def run(args: argparse.Namespace, info: dict[str, str], key: str) -> dict[str, Any]:
    """Send ``args.count`` notifications at ``args.concurrency``; the measured sample."""
    url = urlsplit(args.url)
    context = ssl.create_default_context(cafile=args.ca)
    context.set_alpn_protocols(["h2"])
    client = APNs(
        key=key,
        key_id=info["key_id"],
        team_id=info["team_id"],
        topic=info["bundle_id"],
        max_connections=args.connections,
        ssl_context=context,
    )
    # The same pool, pointed at the emulator instead of Apple.
    client.pool.__class__ = _LocalPool
    assert isinstance(client.pool, _LocalPool)
    client.pool.host, client.pool.port = url.hostname or "localhost", url.port or 443
    message = {
        "aps": {"alert": {"title": "New message", "body": "You have a new message from a friend"}},
        "conversation": "c0ffee",
        "kind": "message",
    }
    make = partial(
        NotificationRequest,
        message=message,
        priority=10,
        push_type=PushType.ALERT,
        collapse_key="conversation-c0ffee",
    )
    first = await client.send_notification(make(device_token=f"{0:064x}"))
    if not first.is_successful:
        raise SystemExit(f"aioapns: the emulator refused a push: {first.description}")
    semaphore = asyncio.Semaphore(args.concurrency)
    failures = 0

    async def one(index: int) -> None:
        nonlocal failures
        async with semaphore:
            result = await client.send_notification(make(device_token=f"{index:064x}"))
            if not result.is_successful:
                failures += 1

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(index) for index in range(args.count)))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    if failures:
        raise SystemExit(f"aioapns: {failures} pushes failed")
    return {
        "client": "aioapns",
        "pushes": args.count,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
    }


def main() -> int:
    """Parse the arguments, run, print the sample."""
    parser = argparse.ArgumentParser(
        description="The aioapns baseline of relay bench push, in a process of its own."
    )
    parser.add_argument("--url", required=True, help="the APNs emulator's URL")
    parser.add_argument("--ca", required=True, help="the CA certificate that signed it")
    parser.add_argument("--state", required=True, help="the emulator's state directory")
    parser.add_argument("--count", type=int, required=True, help="pushes to send")
    parser.add_argument("--concurrency", type=int, required=True, help="pushes in flight")
    parser.add_argument("--connections", type=int, default=1, help="HTTP/2 connections")
    args = parser.parse_args()
    state = Path(args.state)
    info = json.loads((state / "apns.json").read_text())
    key = (state / "apns-key.p8").read_text()
    print(json.dumps(asyncio.run(run(args, info, key))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
