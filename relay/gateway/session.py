"""Gateway sessions: delivering a device's messages over one WebSocket.

Each connection runs in its own nursery:

* the **reader** decodes incoming frames and hands acknowledged ids to the shared
  :class:`~relay.gateway.acks.AckBatcher` (waiting, and so pausing the client, when its
  buffer is full); anything that is not a valid ack frame is ignored;
* the **pump** waits for a wake-up from the hub, then reads the device's queue in pages
  after a per-connection cursor and turns each page into ``EnvelopeBatch`` frames;
* the **pre-key reporter** answers "pre-keys low" events, debounced, with the current
  count;
* the **writer** is the only task that writes to the socket, fed by a bounded channel, so
  a slow client slows only its own pump.

Liveness (pings, closing a silent connection) is done by the HTTP server underneath:
pongs never reach an ASGI application, so only the transport can see them.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import trio

from relay import wire
from relay.gateway.acks import AckBatcher
from relay.gateway.hub import Hub, Subscription
from storage.db import Database
from storage.ids import now_us
from storage.repos import keys, messages
from storage.repos.messages import PendingMessage

log = logging.getLogger("relay.gateway")

GOING_AWAY = 1001
NORMAL_CLOSURE = 1000
_CLOSE_GRACE_SECS = 2.0


class Connection(Protocol):
    """The socket side of a session (an accepted WebSocket)."""

    async def receive(self) -> bytes | str | None:
        """The next message, or None once the peer has gone."""

    async def send(self, frame: bytes) -> None:
        """Send one binary message."""

    async def close(self, code: int, reason: str) -> None:
        """Send a close frame."""


@dataclass(frozen=True, kw_only=True)
class GatewayConfig:
    """The ``WS_*`` and pre-key settings a session needs."""

    fetch_batch_size: int
    max_batch_bytes: int
    outbound_buffer_size: int
    pre_key_threshold: int
    pre_key_debounce: float


def envelope_bytes(message: PendingMessage) -> bytes:
    """A queued message as an encoded ``Envelope``."""
    return wire.encode_envelope(
        wire.EnvelopeRecord(
            id=message.id.bytes,
            sender_id=message.sender_id.bytes,
            timestamp=message.created_at // 1000,
            message=message.content,
            sender_device_id=message.sender_device_id.bytes,
        )
    )


class Gateway:
    """Runs sessions and closes them all at shutdown."""

    def __init__(
        self,
        db: Database,
        hub: Hub,
        acks: AckBatcher,
        config: GatewayConfig,
    ) -> None:
        self._db = db
        self._hub = hub
        self._acks = acks
        self._config = config
        self._shutting_down = trio.Event()

    def shut_down(self) -> None:
        """Close every session with 1001 and refuse to keep new ones open."""
        self._shutting_down.set()

    async def serve(self, device_id: uuid.UUID, connection: Connection) -> None:
        """Run one session until the peer leaves, the device is taken over, or shutdown."""
        with self._hub.subscribe(device_id) as subscription:
            try:
                close = await self._run(subscription, connection)
            finally:
                with trio.move_on_after(_CLOSE_GRACE_SECS) as scope:
                    scope.shield = True
                    await self._acks.flush()
        if close is not None:
            with trio.move_on_after(_CLOSE_GRACE_SECS):
                await connection.close(*close)

    async def _run(
        self, subscription: Subscription, connection: Connection
    ) -> tuple[int, str] | None:
        device_id = subscription.device_id
        count = await self._db.read(lambda conn: keys.count_one_time(conn, device_id))
        if count < self._config.pre_key_threshold:
            await connection.send(
                wire.encode_pre_key_status_frame(count, self._config.pre_key_threshold)
            )
        outbound_send, outbound_receive = trio.open_memory_channel[bytes](
            self._config.outbound_buffer_size
        )
        close: tuple[int, str] | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read, connection, device_id, nursery.cancel_scope)
            nursery.start_soon(self._write, connection, outbound_receive)
            nursery.start_soon(self._pump, subscription, outbound_send)
            nursery.start_soon(self._report_pre_keys, subscription, outbound_send)
            async with trio.open_nursery() as watchers:

                async def on(event: trio.Event, reason: tuple[int, str]) -> None:
                    nonlocal close
                    await event.wait()
                    close = close or reason
                    watchers.cancel_scope.cancel()

                watchers.start_soon(
                    on, subscription.disconnected, (NORMAL_CLOSURE, "Device taken over")
                )
                watchers.start_soon(on, self._shutting_down, (GOING_AWAY, "Server shutting down"))
            nursery.cancel_scope.cancel()
        return close

    async def _read(
        self, connection: Connection, device_id: uuid.UUID, session: trio.CancelScope
    ) -> None:
        while True:
            data = await connection.receive()
            if data is None:
                session.cancel()
                return
            if isinstance(data, str):
                continue
            try:
                acked = wire.decode_ack_frame(data)
            except wire.DecodeError as error:
                log.debug("ignoring an undecodable frame from %s: %s", device_id, error)
                continue
            if not acked:
                continue
            ids = [uuid.UUID(bytes=raw) for raw in acked if len(raw) == 16]
            if len(ids) < len(acked):
                log.debug("ignoring %d malformed ids from %s", len(acked) - len(ids), device_id)
            await self._acks.acknowledge(device_id, ids)

    @staticmethod
    async def _write(connection: Connection, outbound: trio.MemoryReceiveChannel[bytes]) -> None:
        async for frame in outbound:
            await connection.send(frame)

    async def _pump(
        self, subscription: Subscription, outbound: trio.MemorySendChannel[bytes]
    ) -> None:
        device_id = subscription.device_id
        limit = self._config.fetch_batch_size
        cursor: tuple[int, uuid.UUID] | None = None
        subscription.messages.set()  # drain the backlog first
        while True:
            await subscription.messages.wait()
            while True:
                fetch = partial(
                    messages.fetch_page,
                    device_id=device_id,
                    after=cursor,
                    now=now_us(),
                    limit=limit,
                )
                page = await self._db.read(fetch)
                if not page:
                    break
                encoded = [envelope_bytes(message) for message in page]
                for frame in wire.split_into_frames(encoded, self._config.max_batch_bytes):
                    await outbound.send(frame)
                cursor = page[-1].cursor
                if len(page) < limit:
                    break

    async def _report_pre_keys(
        self, subscription: Subscription, outbound: trio.MemorySendChannel[bytes]
    ) -> None:
        device_id = subscription.device_id
        threshold = self._config.pre_key_threshold
        while True:
            await subscription.pre_keys_low.wait()
            await trio.sleep(self._config.pre_key_debounce)
            subscription.pre_keys_low.clear()
            count = await self._db.read(lambda conn: keys.count_one_time(conn, device_id))
            if count < threshold:
                await outbound.send(wire.encode_pre_key_status_frame(count, threshold))
