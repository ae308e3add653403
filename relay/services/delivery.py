"""What the WebSocket gateway reads and deletes: pages of a device's queue, its pre-key
count, and acknowledged messages (the gateway never touches storage itself)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import partial

from sqlalchemy.engine import Connection

from relay.observability import metrics
from relay.services.push.wakeups import Wakeups
from storage.db import Database
from storage.group_commit import GroupCommit
from storage.ids import now_us
from storage.repos import keys, messages
from storage.repos.messages import Page as Page
from storage.repos.messages import PendingMessage as PendingMessage

Acknowledged = tuple[uuid.UUID, bytes]
"""(device id, message id as its 16 wire bytes)."""


class DeliveryService:
    """See the module docstring."""

    def __init__(self, db: Database, reads: GroupCommit, wakeups: Wakeups) -> None:
        self._db = db
        # Page fetches of sessions woken together share one read transaction and hop.
        self._reads = reads
        self._wakeups = wakeups

    async def page(
        self, device_id: uuid.UUID, *, after: tuple[int, bytes] | None, limit: int, max_bytes: int
    ) -> Page:
        """The next page of ``device_id``'s unexpired messages after ``after`` (oldest
        first): at most ``limit`` messages and about ``max_bytes``."""
        fetch = partial(
            messages.fetch_page,
            device_id=device_id,
            after=after,
            now=now_us(),
            limit=limit,
            max_bytes=max_bytes,
        )
        return await self._reads.submit(fetch)

    async def one_time_pre_keys(self, device_id: uuid.UUID) -> int:
        """How many one-time pre-keys ``device_id`` has left."""
        return await self._db.read(lambda conn: keys.count_one_time(conn, device_id))

    async def delete_acknowledged(
        self, batch: Sequence[Acknowledged], devices: set[uuid.UUID]
    ) -> None:
        """Delete acknowledged messages in one transaction; their devices are online, so
        their pending wake-ups are cancelled with it."""

        def delete(conn: Connection) -> None:
            metrics.MESSAGES_DELETED.inc(messages.delete_acknowledged(conn, batch))
            self._wakeups.cancel(conn, devices)

        await self._db.write(delete)
