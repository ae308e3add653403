"""Helpers shared by the messaging and gateway tests: queue counts, numbered sends,
receiving envelope batches."""

from __future__ import annotations

import httpx
import pytest
import trio

from relay.client import Envelope, GatewayConnection, Outgoing
from storage.db import Database
from storage.repos import messages as messages_repo
from tests.factories import Device, new_device


async def pending(db: Database, device: Device) -> int:
    """How many messages are queued for ``device``."""
    return await db.read(lambda conn: messages_repo.count_for_device(conn, device.id))


async def pending_is(db: Database, device: Device, count: int) -> bool:
    """True if exactly ``count`` messages are queued for ``device``."""
    return await pending(db, device) == count


def numbered(index: int, width: int = 8) -> bytes:
    """The payload of the ``index``-th message sent by :func:`send_numbered`."""
    return f"{index:0{width}d}".encode()


async def send_numbered(sender: Device, recipient: Device, count: int, width: int = 8) -> None:
    """Send ``count`` numbered messages, 100 per request; all must be queued."""
    for start in range(0, count, 100):
        batch = [
            Outgoing(recipient.id, numbered(i, width))
            for i in range(start, min(count, start + 100))
        ]
        assert await sender.client.send_messages(batch) == []


async def receive_envelopes(
    gateway: GatewayConnection, count: int, *, seconds: float = 15, statuses_allowed: bool = True
) -> list[list[Envelope]]:
    """Receive batches until ``count`` envelopes have arrived (pre-key statuses skipped,
    or refused when ``statuses_allowed`` is False)."""
    batches: list[list[Envelope]] = []
    with trio.fail_after(seconds):
        while sum(len(b) for b in batches) < count:
            event = await gateway.next_event()
            if isinstance(event, list):
                batches.append(event)
            else:
                assert statuses_allowed, event
    return batches


async def nothing_more(gateway: GatewayConnection, seconds: float = 0.5) -> None:
    """Fail if the gateway sends anything within ``seconds``."""
    with trio.move_on_after(seconds):
        pytest.fail(f"unexpected frame {await gateway.next_event()!r}")


async def device_and_sender(
    http: httpx.AsyncClient, backlog: int = 0, *, width: int = 8
) -> tuple[Device, Device]:
    """A receiving device (with enough pre-keys to get no pre-key status) and a sender
    that has already queued ``backlog`` numbered messages for it."""
    device = await new_device(http, one_time_pre_keys=20)
    sender = await new_device(http)
    if backlog:
        await send_numbered(sender, device, backlog, width)
    return device, sender
