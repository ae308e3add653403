"""Accounts, devices and traffic for the relay scenarios.

Set-up (accounts, devices, gateway tickets) goes through the client SDK; the measured
traffic goes through :mod:`bench.load_client` with request bodies built before the clock
starts, so the client spends as little CPU as possible next to the server under test.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import trio

from bench.load_client import request_bytes
from obscura_proto.obscura.v1 import SendMessageRequest, SendMessageRequestSubmission
from relay.client import DeviceKeys, ObscuraClient

PASSWORD = "benchmark password 0123"  # noqa: S105 (a throw-away account)
SETUP_CONCURRENCY = 16
PAYLOAD_BYTES = 256


@dataclass(frozen=True)
class BenchDevice:
    """A device and the SDK client acting as it."""

    client: ObscuraClient
    id: uuid.UUID

    @property
    def token(self) -> str:
        """Its access token."""
        assert self.client.session is not None
        return self.client.session.token


def address(api: str) -> tuple[str, int]:
    """Host and port of an API URL."""
    url = urlsplit(api)
    assert url.hostname is not None
    assert url.port is not None
    return url.hostname, url.port


async def new_devices(
    http: httpx.AsyncClient, count: int, *, per_account: int = 1
) -> list[BenchDevice]:
    """``count`` devices, ``per_account`` to an account, created ``SETUP_CONCURRENCY`` at
    a time."""
    devices: list[BenchDevice] = []
    limiter = trio.CapacityLimiter(SETUP_CONCURRENCY)

    async def account(size: int) -> None:
        async with limiter:
            owner = ObscuraClient(http)
            await owner.register(f"bench_{uuid.uuid4().hex[:20]}", PASSWORD)
            assert owner.session is not None
            for _ in range(size):
                client = ObscuraClient(http, owner.session)
                session = await client.create_device(DeviceKeys.generate(one_time_pre_keys=0))
                assert session.device_id is not None
                devices.append(BenchDevice(client, session.device_id))

    async with trio.open_nursery() as nursery:
        for start in range(0, count, per_account):
            nursery.start_soon(account, min(per_account, count - start))
    return devices


def payload(sequence: int) -> bytes:
    """A message body: its sequence number, then padding (opaque to the server)."""
    return struct.pack(">Q", sequence) + bytes(PAYLOAD_BYTES - 8)


def sequence_of(message: bytes) -> int:
    """The sequence number a :func:`payload` carries."""
    return int(struct.unpack(">Q", message[:8])[0])


def send_request(sender: BenchDevice, targets: Sequence[uuid.UUID], first: int) -> bytes:
    """A complete ``POST /v1/messages`` with one submission per target, sequence numbers
    from ``first`` on."""
    body = SendMessageRequest(
        messages=[
            SendMessageRequestSubmission(
                submission_id=uuid.uuid4().bytes,
                device_id=target.bytes,
                message=payload(first + index),
            )
            for index, target in enumerate(targets)
        ]
    )
    headers = {
        "authorization": f"Bearer {sender.token}",
        "idempotency-key": str(uuid.uuid4()),
        "content-type": "application/x-protobuf",
    }
    return request_bytes("POST", "/v1/messages", headers, bytes(body))
