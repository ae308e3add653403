"""Hub events shared between the worker processes of one server.

With ``RELAY_SERVER_WORKERS`` above 1 a device's gateway session may live in another
process than the request that queued its messages. Each worker owns one Unix datagram
socket, its *inbox*, and holds a socket connected to every peer's inbox; an event is
applied to this process's sessions, then sent to every peer, which applies it to its own.
The supervisor binds every inbox before any worker starts, so an event sent to a worker
that is still starting waits in its queue instead of being lost. A connected datagram
socket blocks its sender while the peer's queue is full: that is the backpressure.

Events carry device ids only, as in :class:`~relay.gateway.hub.LocalHub`: a datagram is
one kind byte followed by 16-byte UUIDs. The encoding is sans-IO (:func:`encode_events`,
:func:`decode_event`); :class:`PeerHub` does the I/O.
"""

from __future__ import annotations

import enum
import logging
import socket
import uuid
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager

import trio

from relay.gateway.hub import LocalHub, Subscription

log = logging.getLogger("relay.gateway")

# 16 KiB of ids a datagram: far below the Unix datagram limit (the socket buffer).
MAX_IDS_PER_DATAGRAM = 1024
# A peer that cannot take an event for this long is stuck; its sessions read their
# queues at their next wake-up or reconnection instead.
SEND_TIMEOUT_SECS = 2.0
_RECEIVE_BYTES = 1 + 16 * MAX_IDS_PER_DATAGRAM


class EventKind(enum.IntEnum):
    """What happened to the devices of a datagram."""

    MESSAGES_QUEUED = 1
    TAKEN_OVER = 2
    PRE_KEYS_LOW = 3


def encode_events(kind: EventKind, device_ids: Sequence[uuid.UUID]) -> list[bytes]:
    """The datagrams telling peers that ``kind`` happened to ``device_ids``."""
    head = bytes([kind])
    return [
        head + b"".join(device.bytes for device in device_ids[start : start + MAX_IDS_PER_DATAGRAM])
        for start in range(0, len(device_ids), MAX_IDS_PER_DATAGRAM)
    ]


def decode_event(datagram: bytes) -> tuple[EventKind, list[uuid.UUID]]:
    """Kind and device ids of one datagram; ``ValueError`` when it is not one of ours."""
    if not datagram or (len(datagram) - 1) % 16:
        raise ValueError(f"a hub datagram of {len(datagram)} bytes")
    kind = EventKind(datagram[0])
    return kind, [uuid.UUID(bytes=datagram[i : i + 16]) for i in range(1, len(datagram), 16)]


def inbox_address(group: str, index: int) -> bytes:
    """The abstract-namespace address of worker ``index``'s inbox (nothing on disk to
    clean up, and gone with the last process holding it)."""
    return f"\0relay-hub-{group}-{index}".encode()


def bind_inbox(group: str, index: int) -> socket.socket:
    """Worker ``index``'s inbox, bound (done by the supervisor, before workers start)."""
    inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    inbox.bind(inbox_address(group, index))
    return inbox


class PeerHub:
    """A :class:`LocalHub` whose events also reach the sessions of peer workers."""

    def __init__(self, local: LocalHub, inbox: socket.socket, peers: Iterable[bytes]) -> None:
        self._local = local
        self._inbox = trio.socket.from_stdlib_socket(inbox)
        self._peer_addresses = tuple(peers)
        self._peers: dict[bytes, trio.socket.SocketType] = {}

    def subscribe(self, device_id: uuid.UUID) -> AbstractContextManager[Subscription]:
        """Receive events for ``device_id`` while the context is open."""
        return self._local.subscribe(device_id)

    def session_count(self) -> int:
        """How many sessions this process holds."""
        return self._local.session_count()

    async def messages_queued(self, device_ids: Iterable[uuid.UUID]) -> None:
        """Wake the delivery of every session of these devices, in every worker."""
        devices = list(device_ids)
        await self._local.messages_queued(devices)
        await self._broadcast(EventKind.MESSAGES_QUEUED, devices)

    async def device_taken_over(self, device_id: uuid.UUID) -> None:
        """Tell every session of the device, in every worker, to close."""
        await self._local.device_taken_over(device_id)
        await self._broadcast(EventKind.TAKEN_OVER, [device_id])

    async def pre_keys_low(self, device_ids: Iterable[uuid.UUID]) -> None:
        """Ask every session of these devices, in every worker, for its pre-key count."""
        devices = list(device_ids)
        await self._local.pre_keys_low(devices)
        await self._broadcast(EventKind.PRE_KEYS_LOW, devices)

    async def run(self, stopping: trio.Event) -> None:
        """Connect to the peers, then apply their events here until ``stopping``."""
        for address in self._peer_addresses:
            peer = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            await peer.connect(address)
            self._peers[address] = peer
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._receive)
                await stopping.wait()
                nursery.cancel_scope.cancel()
        finally:
            for peer in self._peers.values():
                peer.close()
            self._peers.clear()
            self._inbox.close()

    async def _receive(self) -> None:
        while True:
            datagram = await self._inbox.recv(_RECEIVE_BYTES)
            try:
                kind, devices = decode_event(datagram)
            except ValueError as error:
                log.warning("dropped a hub datagram: %s", error)
                continue
            if kind is EventKind.MESSAGES_QUEUED:
                await self._local.messages_queued(devices)
            elif kind is EventKind.PRE_KEYS_LOW:
                await self._local.pre_keys_low(devices)
            else:
                for device in devices:
                    await self._local.device_taken_over(device)

    async def _broadcast(self, kind: EventKind, devices: Sequence[uuid.UUID]) -> None:
        if not devices or not self._peers:
            return
        datagrams = encode_events(kind, devices)
        for address, peer in list(self._peers.items()):
            try:
                with trio.move_on_after(SEND_TIMEOUT_SECS) as waited:
                    for datagram in datagrams:
                        await peer.send(datagram)
            except OSError as error:
                # The peer has exited (its inbox is closed): nothing there to wake.
                log.warning("hub peer %r is gone: %s", address, error)
                if self._peers.pop(address, None) is not None:
                    peer.close()
                continue
            if waited.cancelled_caught:
                log.warning("hub peer %r is not reading; an event was dropped", address)
