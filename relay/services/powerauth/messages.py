"""``/push/message/send`` and ``/push/message/batch/send``.

Targets are the user's registrations in the app from every face (narrowed to one
activation when ``activationId`` is given); ``personal`` skips registrations whose
activation is not ACTIVE. SYNCHRONOUS waits for the providers and counts per platform
(transient failures are queued and counted pending); ASYNCHRONOUS queues and returns.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from providers.message import Platform
from relay.services.powerauth.devices import PowerAuthDevices
from relay.services.powerauth.payload import OutgoingMessage, to_push_message
from relay.services.push.queue import Delivery
from relay.services.push.sender import PlatformCounts
from relay.services.registrations import RegistrationSender
from storage.db import Database
from storage.ids import MICROS_PER_SECOND
from storage.repos import push_registrations

log = logging.getLogger("relay.powerauth")

MAX_BATCH = 20


@dataclass(frozen=True)
class MessageSend:
    """A validated ``/push/message/send`` or ``batch/send``."""

    app: str
    mode: str
    messages: tuple[OutgoingMessage, ...]


class PowerAuthMessages:
    """See the module docstring."""

    def __init__(self, db: Database, devices: PowerAuthDevices, sender: RegistrationSender) -> None:
        self._db = db
        self._devices = devices
        self._sender = sender

    async def send(self, request: MessageSend) -> dict[Platform, PlatformCounts] | None:
        """Send the messages; per-platform counts when SYNCHRONOUS, None otherwise."""
        app_id = await self._devices.app(request.app)
        return await self.deliver(app_id, request.messages, request.mode)

    async def deliver(
        self, app_id: uuid.UUID, messages: Sequence[OutgoingMessage], mode: str
    ) -> dict[Platform, PlatformCounts] | None:
        """Send validated messages; counts for SYNCHRONOUS, None for ASYNCHRONOUS."""

        def targets(conn: Any) -> list[list[push_registrations.Registration]]:
            return [
                push_registrations.of_user(
                    conn, app_id, item.user_id, activation_id=item.activation_id
                )
                for item in messages
            ]

        found = await self._db.read(targets)
        deliveries: list[Delivery] = []
        expiry: int | None = None
        for item, registrations in zip(messages, found, strict=True):
            usable = [r for r in registrations if r.active or not item.attributes.personal]
            if not usable:
                log.warning("no device registered for a message to one user of app %s", app_id)
                continue
            push = to_push_message(item.body, priority=item.priority, silent=item.attributes.silent)
            if push.expires_at is not None:
                expiry = max(expiry or 0, push.expires_at)
            deliveries.extend(self._sender.deliveries(usable, push))
        if mode == "ASYNCHRONOUS":
            if deliveries:
                expires_at = None if expiry is None else expiry * MICROS_PER_SECOND
                await self._sender.push.queue.enqueue(app_id, deliveries, expires_at=expires_at)
            return None
        if not deliveries:
            return {platform: PlatformCounts() for platform in Platform}
        return await self._sender.push.sender.send_now(app_id, deliveries)
