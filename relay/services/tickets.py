"""Gateway tickets: short-lived, single-use credentials for the WebSocket handshake."""

from __future__ import annotations

import uuid
from functools import partial

from relay.crypto.secrets import digest
from relay.errors import AuthenticationFailed
from relay.services.principal import Principal
from storage.db import Database
from storage.errors import IntegrityViolation
from storage.ids import MICROS_PER_SECOND, now_us
from storage.repos import tickets


class TicketService:
    """Issues tickets to device-scoped callers and redeems them exactly once."""

    def __init__(self, db: Database, *, ttl_secs: int) -> None:
        self._db = db
        self._ttl_us = ttl_secs * MICROS_PER_SECOND

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
        """The ticket's device if it is valid; the ticket is spent either way."""
        ticket_hash = digest(ticket)
        return await self._db.write(lambda conn: tickets.redeem(conn, ticket_hash, now=now_us()))

    async def delete_expired(self) -> int:
        """Forget tickets that expired unused."""
        return await self._db.write(partial(tickets.delete_expired, now=now_us()))
