"""Gateway tickets: short-lived, single-use credentials for the WebSocket handshake."""

from __future__ import annotations

import uuid
from functools import partial

from sqlalchemy.engine import Connection

from relay.crypto.secrets import digest
from relay.errors import AuthenticationFailed
from relay.services.principal import Principal
from relay.services.push.wakeups import Wakeups
from storage.db import Database
from storage.errors import IntegrityViolation
from storage.ids import MICROS_PER_SECOND, now_us
from storage.repos import tickets


class TicketService:
    """Issues tickets to device-scoped callers and redeems them exactly once."""

    def __init__(self, db: Database, *, ttl_secs: int, wakeups: Wakeups | None = None) -> None:
        self._db = db
        self._ttl_us = ttl_secs * MICROS_PER_SECOND
        self._wakeups = wakeups

    async def issue(self, principal: Principal) -> str:
        """A new ticket for the caller's device (a random UUIDv4 string)."""
        device_id = principal.require_device()
        ticket = str(uuid.uuid4())
        expires_at = now_us() + self._ttl_us
        try:
            await self._db.write(
                lambda conn: tickets.insert(conn, digest(ticket), device_id, expires_at=expires_at)
            )
        except IntegrityViolation:
            raise AuthenticationFailed() from None  # the token's device has been deleted
        return ticket

    async def redeem(self, ticket: str) -> uuid.UUID | None:
        """The ticket's device if it is valid; the ticket is spent either way.

        A session of the device is about to start, so its pending wake-up is cancelled in
        the same transaction (obscura-contract §5.2).
        """
        ticket_hash = digest(ticket)

        def work(conn: Connection) -> uuid.UUID | None:
            device_id = tickets.redeem(conn, ticket_hash, now=now_us())
            if device_id is not None and self._wakeups is not None:
                self._wakeups.cancel(conn, [device_id])
            return device_id

        return await self._db.write(work)

    async def delete_expired(self) -> int:
        """Forget tickets that expired unused."""
        return await self._db.write(partial(tickets.delete_expired, now=now_us()))
