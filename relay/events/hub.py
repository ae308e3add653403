"""Fan-out of device events to the gateway sessions that care about them.

Services publish *that something happened to a device* (messages queued, identity taken
over, pre-keys running low); sessions subscribe per device. Events carry no payload: a
woken session reads what it needs from the database, so a notification that is lost or
merged costs nothing but a later read. That is also what lets another implementation
replace :class:`LocalHub` without any change to the gateway, which only sees the
:class:`Hub` protocol: between the worker processes of one server it is
:class:`~relay.events.peer_hub.PeerHub`, between hosts
:class:`~relay.events.redis_hub.RedisHub`.
"""

from __future__ import annotations

import abc
import enum
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

import trio


class Signal:
    """A coalescing wake-up: any number of :meth:`set` calls wake one :meth:`wait`."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        """Wake the waiter (now, or at its next wait)."""
        self._event.set()

    def is_set(self) -> bool:
        """True if a wake-up is pending."""
        return self._event.is_set()

    def clear(self) -> None:
        """Drop any pending wake-up."""
        if self._event.is_set():
            self._event = trio.Event()

    async def wait(self) -> None:
        """Wait for a wake-up and consume it (and every other one pending)."""
        await self._event.wait()
        self._event = trio.Event()


class Subscription:
    """One session's view of its device's events.

    A take-over is a callback, not something a task waits for: an idle session then
    costs no task for it (a waiting trio task is about 2.3 KB, per connection).
    """

    def __init__(self, device_id: uuid.UUID) -> None:
        self.device_id = device_id
        self.messages = Signal()
        self.pre_keys_low = Signal()
        self.on_take_over: Callable[[], None] | None = None

    def take_over(self) -> None:
        """The device's identity changed: this session must close."""
        if self.on_take_over is not None:
            self.on_take_over()


class Hub(Protocol):
    """What services publish to and sessions subscribe to."""

    def subscribe(self, device_id: uuid.UUID) -> AbstractContextManager[Subscription]:
        """Receive events for ``device_id`` while the context is open."""

    async def messages_queued(self, device_ids: Iterable[uuid.UUID]) -> None:
        """New messages are pending for these devices."""

    async def device_taken_over(self, device_id: uuid.UUID) -> None:
        """The device's identity changed: every session of it must close."""

    async def pre_keys_low(self, device_ids: Iterable[uuid.UUID]) -> None:
        """These devices' one-time pre-keys fell below the refill threshold."""

    async def healthy(self) -> bool:
        """Whether events reach every session they are meant for (``/readyz`` pubsub)."""

    async def run(self, stopping: trio.Event) -> None:
        """Carry events between processes until ``stopping`` (the server's root nursery)."""


class LocalHub:
    """The in-process hub: all sessions live in this process."""

    def __init__(self) -> None:
        self._subscriptions: dict[uuid.UUID, set[Subscription]] = {}

    @contextmanager
    def subscribe(self, device_id: uuid.UUID) -> Iterator[Subscription]:
        """Receive events for ``device_id`` while the context is open."""
        subscription = Subscription(device_id)
        self._subscriptions.setdefault(device_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            remaining = self._subscriptions[device_id]
            remaining.discard(subscription)
            if not remaining:
                del self._subscriptions[device_id]

    def _of(self, device_id: uuid.UUID) -> Iterable[Subscription]:
        return self._subscriptions.get(device_id, ())

    async def messages_queued(self, device_ids: Iterable[uuid.UUID]) -> None:
        """Wake the delivery of every session of these devices."""
        for device_id in device_ids:
            for subscription in self._of(device_id):
                subscription.messages.set()

    async def device_taken_over(self, device_id: uuid.UUID) -> None:
        """Tell every session of the device to close."""
        for subscription in list(self._of(device_id)):
            subscription.take_over()

    async def pre_keys_low(self, device_ids: Iterable[uuid.UUID]) -> None:
        """Ask every session of these devices to report its pre-key count."""
        for device_id in device_ids:
            for subscription in self._of(device_id):
                subscription.pre_keys_low.set()

    async def healthy(self) -> bool:
        """Always: every session is in this process."""
        return True

    def wake_all(self) -> None:
        """Every session reads its queue again (after a gap in the events it received)."""
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                subscription.messages.set()

    async def run(self, stopping: trio.Event) -> None:
        """Nothing to run: every session is in this process."""
        await stopping.wait()

    def session_count(self) -> int:
        """How many sessions are subscribed (for metrics and tests)."""
        return sum(len(subs) for subs in self._subscriptions.values())


class EventKind(enum.IntEnum):
    """What happened to some devices (the byte other processes receive)."""

    MESSAGES_QUEUED = 1
    TAKEN_OVER = 2
    PRE_KEYS_LOW = 3


class RelayingHub(abc.ABC):
    """A :class:`LocalHub` whose events also go to other processes: applied here at
    once, then handed to :meth:`_forward`; what others send is :meth:`apply` -ed here."""

    def __init__(self, local: LocalHub) -> None:
        self._local = local

    def subscribe(self, device_id: uuid.UUID) -> AbstractContextManager[Subscription]:
        """Receive events for ``device_id`` while the context is open."""
        return self._local.subscribe(device_id)

    def session_count(self) -> int:
        """How many sessions this process holds."""
        return self._local.session_count()

    async def messages_queued(self, device_ids: Iterable[uuid.UUID]) -> None:
        """Wake the delivery of every session of these devices, in every process."""
        devices = list(device_ids)
        await self._local.messages_queued(devices)
        self._forward(EventKind.MESSAGES_QUEUED, devices)

    async def device_taken_over(self, device_id: uuid.UUID) -> None:
        """Tell every session of the device, in every process, to close."""
        await self._local.device_taken_over(device_id)
        self._forward(EventKind.TAKEN_OVER, [device_id])

    async def pre_keys_low(self, device_ids: Iterable[uuid.UUID]) -> None:
        """Ask every session of these devices, in every process, for its pre-key count."""
        devices = list(device_ids)
        await self._local.pre_keys_low(devices)
        self._forward(EventKind.PRE_KEYS_LOW, devices)

    @abc.abstractmethod
    def _forward(self, kind: EventKind, devices: list[uuid.UUID]) -> None:
        """Hand an event applied here to the other processes (without waiting)."""

    async def apply(self, kind: EventKind, devices: list[uuid.UUID]) -> None:
        """An event another process sent, applied to this process's sessions."""
        if kind is EventKind.MESSAGES_QUEUED:
            await self._local.messages_queued(devices)
        elif kind is EventKind.PRE_KEYS_LOW:
            await self._local.pre_keys_low(devices)
        else:
            for device in devices:
                await self._local.device_taken_over(device)
