"""Hub events shared between hosts through Redis pub/sub (``RELAY_PUBSUB_URL``).

Every process subscribes to one channel and applies what other processes publish to its
own sessions (:class:`~relay.events.hub.LocalHub`). A message is this process's 16-byte
node id, one kind byte and 16-byte device ids (at most 1,024): events carry no payload,
as everywhere in the hub. An event is applied here at once; the rest of the cluster hears
it from a publisher task, so a request never waits on Redis. While Redis is away the
events wait, merged per kind, and go out after the reconnect.

Pub/sub keeps nothing for a subscriber that is away. So after every (re)subscribe every
local session does a catch-up read (:meth:`LocalHub.wake_all`): a message queued during a
gap is delivered then. A take-over lost in a gap leaves the old session open until its
client reconnects; pre-key alerts lost in a gap come again with the next upload check.
Both loops reconnect with a doubling backoff between the configured bounds; a silent
partition is noticed by a PING every few seconds on the subscription.
"""

from __future__ import annotations

import logging
import uuid

import trio

from relay.events.hub import EventKind, LocalHub, RelayingHub
from relay.events.peer_hub import MAX_IDS_PER_DATAGRAM
from storage.redis.client import RedisAddress, RedisConnection, RedisError

log = logging.getLogger("relay.events")

CHANNEL = "obscura:relay:events"
_CONNECT_TIMEOUT_SECS = 5.0
_PING_INTERVAL_SECS = 3.0


def encode_bus_message(node: uuid.UUID, kind: EventKind, devices: list[uuid.UUID]) -> list[bytes]:
    """The pub/sub messages telling other processes that ``kind`` happened to ``devices``."""
    head = node.bytes + bytes([kind])
    return [
        head + b"".join(device.bytes for device in devices[start : start + MAX_IDS_PER_DATAGRAM])
        for start in range(0, len(devices), MAX_IDS_PER_DATAGRAM)
    ]


def decode_bus_message(data: bytes) -> tuple[uuid.UUID, EventKind, list[uuid.UUID]]:
    """Node, kind and devices of a pub/sub message (ValueError if malformed)."""
    if len(data) < 17 or (len(data) - 17) % 16:
        raise ValueError(f"a bus message of {len(data)} bytes")
    kind = EventKind(data[16])
    devices = [uuid.UUID(bytes=data[i : i + 16]) for i in range(17, len(data), 16)]
    return uuid.UUID(bytes=data[:16]), kind, devices


class _Backoff:
    """A doubling delay between ``low`` and ``high`` seconds, reset on success."""

    def __init__(self, low: float, high: float) -> None:
        self._low, self._high = low, high
        self.delay = low

    def failed(self) -> float:
        """The delay to wait now; the next one doubles."""
        delay = self.delay
        self.delay = min(self.delay * 2, self._high)
        return delay

    def succeeded(self) -> None:
        """Back to the shortest delay."""
        self.delay = self._low


class RedisHub(RelayingHub):
    """A :class:`LocalHub` whose events also reach every other process on the bus."""

    def __init__(
        self,
        local: LocalHub,
        address: RedisAddress,
        *,
        min_backoff: float,
        max_backoff: float,
        channel: str = CHANNEL,
    ) -> None:
        super().__init__(local)
        self._address = address
        self._channel = channel
        self._backoff = (min_backoff, max_backoff)
        self.node = uuid.uuid4()
        self._pending: dict[EventKind, set[uuid.UUID]] = {kind: set() for kind in EventKind}
        self._wake = trio.Event()
        self._subscribed = False
        self._publishing = False
        self.resyncs = 0

    async def healthy(self) -> bool:
        """Subscribed, and the last publish (if any was due) went out."""
        await trio.lowlevel.checkpoint()
        return self._subscribed and (self._publishing or not self._has_pending())

    async def run(self, stopping: trio.Event) -> None:
        """Publish and receive until ``stopping``."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._publisher)
            nursery.start_soon(self._subscriber)
            await stopping.wait()
            nursery.cancel_scope.cancel()

    def _forward(self, kind: EventKind, devices: list[uuid.UUID]) -> None:
        if devices:
            self._pending[kind].update(devices)
            self._wake.set()

    def _has_pending(self) -> bool:
        return any(self._pending.values())

    def _take_pending(self) -> list[tuple[EventKind, list[uuid.UUID]]]:
        taken = [(kind, list(devices)) for kind, devices in self._pending.items() if devices]
        for kind, _ in taken:
            self._pending[kind] = set()
        return taken

    async def _publisher(self) -> None:
        backoff = _Backoff(*self._backoff)
        while True:
            try:
                connection = await RedisConnection.open(self._address, within=_CONNECT_TIMEOUT_SECS)
            except RedisError as error:
                self._publishing = False
                log.warning("event bus: publisher cannot reach %s: %s", self._address, error)
                await trio.sleep(backoff.failed())
                continue
            self._publishing = True
            backoff.succeeded()
            try:
                await self._publish_from(connection)
            except RedisError as error:
                self._publishing = False
                log.warning("event bus: publisher lost %s: %s", self._address, error)
                await trio.sleep(backoff.failed())
            finally:
                with trio.CancelScope(shield=True):
                    await connection.aclose()

    async def _publish_from(self, connection: RedisConnection) -> None:
        while True:
            if not self._has_pending():
                await self._wake.wait()
                self._wake = trio.Event()
            batch = self._take_pending()
            commands = [
                ("PUBLISH", self._channel, message)
                for kind, devices in batch
                for message in encode_bus_message(self.node, kind, devices)
            ]
            try:
                await connection.send(*commands)
                for _ in commands:
                    await connection.reply()
            except RedisError:
                for kind, devices in batch:
                    self._pending[kind].update(devices)  # sent again after the reconnect
                raise

    async def _subscriber(self) -> None:
        backoff = _Backoff(*self._backoff)
        while True:
            try:
                connection = await RedisConnection.open(self._address, within=_CONNECT_TIMEOUT_SECS)
            except RedisError as error:
                log.warning("event bus: cannot subscribe at %s: %s", self._address, error)
                await trio.sleep(backoff.failed())
                continue
            try:
                await connection.call("SUBSCRIBE", self._channel)
                self._subscribed = True
                backoff.succeeded()
                # Whatever was published while we were away is lost: read instead.
                self.resyncs += 1
                self._local.wake_all()
                log.info("event bus: subscribed at %s", self._address)
                await self._receive(connection)
            except RedisError as error:
                log.warning("event bus: subscription to %s lost: %s", self._address, error)
            finally:
                self._subscribed = False
                with trio.CancelScope(shield=True):
                    await connection.aclose()
            await trio.sleep(backoff.failed())

    async def _receive(self, connection: RedisConnection) -> None:
        failure: RedisError | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._ping, connection)
            try:
                await self._read(connection)
            except RedisError as error:
                failure = error
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _read(self, connection: RedisConnection) -> None:
        while True:
            # Anything, a PING's answer at least, must arrive within three intervals.
            with trio.move_on_after(3 * _PING_INTERVAL_SECS) as waited:
                reply = await connection.reply()
            if waited.cancelled_caught:
                raise RedisError("no answer to PING: the connection is gone")
            if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                await self._apply(reply[2])

    async def _ping(self, connection: RedisConnection) -> None:
        while True:
            await trio.sleep(_PING_INTERVAL_SECS)
            try:
                await connection.send(("PING",))
            except RedisError:
                return  # the reader fails too, and says why

    async def _apply(self, data: object) -> None:
        if not isinstance(data, bytes):
            return
        try:
            node, kind, devices = decode_bus_message(data)
        except ValueError as error:
            log.warning("event bus: dropped a message: %s", error)
            return
        if node == self.node:
            return  # applied here when it was published
        await self.apply(kind, devices)
