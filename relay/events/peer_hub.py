"""Hub events shared between the worker processes of one server.

With ``RELAY_SERVER_WORKERS`` above 1 a device's gateway session may live in another
process than the request that queued its messages. Each worker owns one Unix datagram
socket, its *inbox*, and holds a socket connected to every peer's inbox; an event is
applied to this process's sessions, then handed to one sender task per peer, which
applies it to its own. The supervisor binds every inbox before any worker starts, so an
event sent to a worker that is still starting waits in its queue instead of being lost.
A connected datagram socket blocks its sender while the peer's queue is full; meanwhile
further events for that peer merge (:class:`_Peer`), which is the backpressure. A worker
that dies is restarted by the supervisor on a new inbox at the same address: its peers
reconnect and send what waited meanwhile.

Events carry device ids only, as in :class:`~relay.events.hub.LocalHub`: a datagram is
one kind byte followed by 16-byte UUIDs. The encoding is sans-IO (:func:`encode_events`,
:func:`decode_event`); :class:`PeerHub` does the I/O.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterable, Sequence

import trio

from relay.events.hub import EventKind, LocalHub, RelayingHub

log = logging.getLogger("relay.gateway")

# 16 KiB of ids a datagram: far below the Unix datagram limit (the socket buffer).
MAX_IDS_PER_DATAGRAM = 1024
_RECEIVE_BYTES = 1 + 16 * MAX_IDS_PER_DATAGRAM
# A peer that is gone is tried again after this, doubling up to the maximum (at once
# when there are events for it).
_RECONNECT_MIN_SECS = 0.1
_RECONNECT_MAX_SECS = 2.0


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


class _Peer:
    """What is still to be told to one peer: device ids by event kind, merged.

    A set per kind instead of a queue: under load, while the peer is slow to read, or
    while it is down (a worker being restarted), events for the same device merge, so
    memory is bounded by the number of devices and the request that published an event
    never waits for a peer. A peer that is gone is reconnected with a backoff, at once
    when there is something to tell it, and gets everything that waited.
    """

    def __init__(self, address: bytes) -> None:
        self.address = address
        self.pending: dict[EventKind, set[uuid.UUID]] = {kind: set() for kind in EventKind}
        self.gone = False
        self._wake = trio.Event()

    def add(self, kind: EventKind, devices: Iterable[uuid.UUID]) -> None:
        self.pending[kind].update(devices)
        self._wake.set()

    async def run(self) -> None:
        """Connect and send whatever is pending; reconnect when the peer goes (until
        cancelled)."""
        delay = _RECONNECT_MIN_SECS
        while True:
            try:
                with trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                    await sock.connect(self.address)
                    if self.gone:
                        log.info("hub peer %r is back", self.address)
                    self.gone = False
                    delay = _RECONNECT_MIN_SECS
                    await self._send(sock)
            except OSError as error:
                # The peer has exited (its inbox is closed) or is being restarted.
                if not self.gone:
                    log.info("hub peer %r is gone: %s", self.address, error)
                self.gone = True
            with trio.move_on_after(delay):
                await self._wake.wait()
            delay = min(delay * 2, _RECONNECT_MAX_SECS)

    async def _send(self, sock: trio.socket.SocketType) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            for kind, devices in self.pending.items():
                if not devices:
                    continue
                self.pending[kind] = set()
                try:
                    for datagram in encode_events(kind, list(devices)):
                        await sock.send(datagram)
                except OSError:
                    self.add(kind, devices)  # kept for the next connection
                    raise


class PeerHub(RelayingHub):
    """A :class:`LocalHub` whose events also reach the sessions of peer workers."""

    def __init__(self, local: LocalHub, inbox: socket.socket, peers: Iterable[bytes]) -> None:
        super().__init__(local)
        self._inbox = trio.socket.from_stdlib_socket(inbox)
        self._peers = [_Peer(address) for address in peers]
        self._running = False

    async def run(self, stopping: trio.Event) -> None:
        """Send events to the peers and apply theirs here until ``stopping``."""
        try:
            async with trio.open_nursery() as nursery:
                self._running = True
                nursery.start_soon(self._receive)
                for peer in self._peers:
                    nursery.start_soon(peer.run)
                await stopping.wait()
                nursery.cancel_scope.cancel()
        finally:
            self._running = False
            self._inbox.close()

    async def healthy(self) -> bool:
        """Whether this worker receives its peers' events and reaches every peer (one
        being restarted does not count until it is back)."""
        await trio.lowlevel.checkpoint()
        return self._running and not any(peer.gone for peer in self._peers)

    def _forward(self, kind: EventKind, devices: list[uuid.UUID]) -> None:
        if devices:
            for peer in self._peers:
                peer.add(kind, devices)

    async def _receive(self) -> None:
        while True:
            datagram = await self._inbox.recv(_RECEIVE_BYTES)
            try:
                kind, devices = decode_event(datagram)
            except ValueError as error:
                log.warning("dropped a hub datagram: %s", error)
                continue
            await self.apply(kind, devices)
