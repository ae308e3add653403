"""Gateway sessions: delivering a device's messages over one WebSocket.

Each connection runs in its own nursery:

* the **reader** decodes incoming frames and hands acknowledged ids to the shared
  :class:`~relay.gateway.acks.AckBatcher` (waiting, and so pausing the client, when its
  buffer is full); anything that is not a valid ack frame is ignored;
* the **pump** waits for a wake-up from the hub, then reads the device's queue in pages
  after a per-connection cursor and turns each page into ``EnvelopeBatch`` frames;
* the **pre-key reporter** answers "pre-keys low" events, debounced, with the current
  count;
* the **writer** is the only task that writes data frames, fed by an
  :class:`~relay.gateway.outbox.Outbox` bounded in frames and in bytes, so a slow
  client slows only its own pump and holds a bounded amount of memory;
* the **heartbeat** pings every interval and drops a peer that has sent nothing at all
  for longer than the interval plus the ping timeout.

The first of these to finish ends the session (peer gone, storage failure), and so do a
takeover and shutdown, which reach the session as callbacks rather than through tasks of
their own: an idle connection's memory is mostly its waiting tasks (about 2.3 KB each).
The rest are cancelled, pending acknowledgements are flushed, the close frame is sent,
and a connection that cannot be closed within a grace period (its peer stopped reading)
is aborted by a guard task started only once the session is ending.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import trio

from relay import wire
from relay.events.hub import Hub, Subscription
from relay.gateway.acks import AckBatcher
from relay.gateway.outbox import Outbox
from relay.observability import metrics
from relay.services.delivery import DeliveryService, PendingMessage
from storage.errors import StorageError

log = logging.getLogger("relay.gateway")

NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
INTERNAL_ERROR = 1011
_TAKEN_OVER_CLOSE = (NORMAL_CLOSURE, "Device taken over")
_GOING_AWAY = (GOING_AWAY, "Server shutting down")
_INTERNAL_ERROR = (INTERNAL_ERROR, "Internal server error")
_CLOSE_GRACE_SECS = 2.0


class Connection(Protocol):
    """The socket side of a session (an accepted WebSocket)."""

    last_received: float  # trio clock: any inbound traffic counts as liveness

    async def receive(self) -> bytes | str | None:
        """The next message, or None once the peer has gone."""

    async def send(self, frame: bytes) -> None:
        """Send one binary message."""

    async def close(self, code: int, reason: str) -> None:
        """Send a close frame."""

    async def ping(self) -> None:
        """Send a ping (the peer's pong updates ``last_received``)."""

    def abort(self) -> None:
        """Drop the TCP connection at once (a peer that stopped reading blocks sends)."""


@dataclass(frozen=True, kw_only=True)
class GatewayConfig:
    """The ``WS_*`` and pre-key settings a session needs."""

    fetch_batch_size: int
    max_batch_bytes: int
    outbound_buffer_size: int
    outbound_buffer_bytes: int
    pre_key_threshold: int
    pre_key_debounce: float
    ping_interval: float
    ping_timeout: float


def _taken_over(ending: _Ending) -> None:
    metrics.GATEWAY_TAKEOVERS.inc()
    ending.finish(_TAKEN_OVER_CLOSE)


def envelope_parts(message: PendingMessage) -> Sequence[bytes]:
    """A queued message as the pieces of its encoded ``Envelope`` (see
    :func:`relay.wire.split_into_frames`)."""
    return wire.envelope_parts(
        message.id,
        message.sender_id,
        message.created_at // 1000,
        message.content,
        message.sender_device_id,
    )


@dataclass
class GatewayStats:
    """Counters of the gateway since start-up (for operators and tests)."""

    sessions_open: int = 0
    sessions_total: int = 0
    pages_read: int = 0
    frames_sent: int = 0
    envelopes_sent: int = 0


class _Ending:
    """How a session ends: the first reason given wins (None: close without a frame)."""

    def __init__(self) -> None:
        self._event = trio.Event()
        self.close: tuple[int, str] | None = None

    def finish(self, close: tuple[int, str] | None) -> None:
        if not self._event.is_set():
            self.close = close
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()


class Gateway:
    """Runs sessions and closes them all at shutdown."""

    def __init__(
        self, delivery: DeliveryService, hub: Hub, acks: AckBatcher, config: GatewayConfig
    ) -> None:
        self._delivery = delivery
        self._hub = hub
        self._acks = acks
        self._config = config
        self._shutting_down = False
        self._endings: set[_Ending] = set()
        self.stats = GatewayStats()

    def shut_down(self) -> None:
        """Close every session with 1001 and refuse to keep new ones open."""
        self._shutting_down = True
        for ending in list(self._endings):
            ending.finish(_GOING_AWAY)

    async def serve(self, device_id: uuid.UUID, connection: Connection) -> None:
        """Run one session until the peer leaves, the device is taken over, or shutdown."""
        self.stats.sessions_open += 1
        self.stats.sessions_total += 1
        metrics.GATEWAY_SESSIONS.inc()
        ending = _Ending()
        if self._shutting_down:
            ending.finish(_GOING_AWAY)
        self._endings.add(ending)
        try:
            with self._hub.subscribe(device_id) as subscription:
                subscription.on_take_over = partial(_taken_over, ending)
                async with trio.open_nursery() as guard:
                    try:
                        await self._run(subscription, connection, ending, guard)
                        if ending.close is not None:
                            await connection.close(*ending.close)
                    finally:
                        with trio.move_on_after(_CLOSE_GRACE_SECS) as scope:
                            scope.shield = True
                            await self._acks.flush()
                    guard.cancel_scope.cancel()
        finally:
            self._endings.discard(ending)
            self.stats.sessions_open -= 1
            metrics.GATEWAY_SESSIONS.dec()

    @staticmethod
    async def _abort_after_grace(connection: Connection) -> None:
        """Started when the session begins to end: cut the connection after a grace period.

        Writes to a peer that stopped reading block and cannot be cancelled (the
        transport shields them), so only closing the socket ends such a session.
        """
        await trio.sleep(_CLOSE_GRACE_SECS)
        log.info("gateway session did not end within %.0f s: aborting", _CLOSE_GRACE_SECS)
        connection.abort()

    async def _run(
        self,
        subscription: Subscription,
        connection: Connection,
        ending: _Ending,
        guard: trio.Nursery,
    ) -> None:
        """The session's tasks, until one of them (or an event) ends the session; the
        grace-period guard starts in ``guard`` as soon as it is ending."""
        try:
            await self._serve_tasks(subscription, connection, ending)
        finally:
            guard.start_soon(self._abort_after_grace, connection)

    async def _serve_tasks(
        self, subscription: Subscription, connection: Connection, ending: _Ending
    ) -> None:
        device_id = subscription.device_id
        try:
            welcome = await self._pre_key_status(device_id)
        except StorageError as error:
            log.warning("gateway session of %s could not start: %s", device_id, error)
            ending.finish(_INTERNAL_ERROR)
            return
        if welcome is not None:
            await connection.send(welcome)
        outbox = Outbox(
            max_frames=self._config.outbound_buffer_size,
            max_bytes=self._config.outbound_buffer_bytes,
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read, connection, device_id, ending)
            nursery.start_soon(self._write, connection, outbox)
            nursery.start_soon(self._pump, subscription, outbox, ending)
            nursery.start_soon(self._report_pre_keys, subscription, outbox, ending)
            nursery.start_soon(self._heartbeat, connection, ending)
            await ending.wait()
            nursery.cancel_scope.cancel()

    async def _heartbeat(self, connection: Connection, ending: _Ending) -> None:
        """Ping every interval; drop a peer silent for longer than interval + timeout."""
        interval = self._config.ping_interval
        allowed_silence = interval + self._config.ping_timeout
        while True:
            await trio.sleep(interval)
            if trio.current_time() - connection.last_received > allowed_silence:
                log.info("gateway peer silent for over %.0f s: dropping it", allowed_silence)
                ending.finish(None)
                return
            await connection.ping()

    async def _read(self, connection: Connection, device_id: uuid.UUID, ending: _Ending) -> None:
        while True:
            data = await connection.receive()
            if data is None:
                ending.finish(None)
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
            ids = [raw for raw in acked if len(raw) == 16]
            if len(ids) < len(acked):
                log.debug("ignoring %d malformed ids from %s", len(acked) - len(ids), device_id)
            metrics.GATEWAY_ACKS.inc(len(ids))
            await self._acks.acknowledge(device_id, ids)

    async def _write(self, connection: Connection, outbox: Outbox) -> None:
        while True:
            frame = await outbox.take()
            try:
                await connection.send(frame)
            finally:
                outbox.written(frame)
            self.stats.frames_sent += 1
            metrics.GATEWAY_FRAMES.inc()

    async def _pump(
        self,
        subscription: Subscription,
        outbox: Outbox,
        ending: _Ending,
    ) -> None:
        device_id = subscription.device_id
        limit = self._config.fetch_batch_size
        cursor: tuple[int, bytes] | None = None
        subscription.messages.set()  # drain the backlog first
        while True:
            await subscription.messages.wait()
            while True:
                try:
                    # A page is at most a frame's worth, so that a slow client holds
                    # about one frame in memory whatever its messages' sizes.
                    page = await self._delivery.page(
                        device_id, after=cursor, limit=limit, max_bytes=self._config.max_batch_bytes
                    )
                except StorageError as error:
                    # The client reconnects and the new session starts from the oldest.
                    log.warning("delivery to %s failed: %s", device_id, error)
                    ending.finish(_INTERNAL_ERROR)
                    return
                self.stats.pages_read += 1
                if not page.messages:
                    break
                cursor, count, more = page.messages[-1].cursor, len(page.messages), page.more
                # Each message is copied once, into its frame, and only the frames are
                # kept while waiting for room in the outbox: a stalled client holds the
                # frame being written and the next one, whatever its backlog.
                frames = wire.split_into_frames(
                    [envelope_parts(message) for message in page.messages],
                    self._config.max_batch_bytes,
                )
                del page
                while frames:
                    await outbox.put(frames.pop(0))
                self.stats.envelopes_sent += count
                metrics.GATEWAY_ENVELOPES.inc(count)
                if not more:
                    break

    async def _report_pre_keys(
        self,
        subscription: Subscription,
        outbox: Outbox,
        ending: _Ending,
    ) -> None:
        while True:
            await subscription.pre_keys_low.wait()
            await trio.sleep(self._config.pre_key_debounce)
            subscription.pre_keys_low.clear()
            try:
                status = await self._pre_key_status(subscription.device_id)
            except StorageError as error:
                log.warning("pre-key count of %s failed: %s", subscription.device_id, error)
                ending.finish(_INTERNAL_ERROR)
                return
            if status is not None:
                await outbox.put(status)

    async def _pre_key_status(self, device_id: uuid.UUID) -> bytes | None:
        """A ``PreKeyStatus`` frame with the current count if it is below the threshold."""
        threshold = self._config.pre_key_threshold
        count = await self._delivery.one_time_pre_keys(device_id)
        return wire.encode_pre_key_status_frame(count, threshold) if count < threshold else None
