"""Single-use WebSocket tickets, stored as SHA-256 digests."""

from __future__ import annotations

import uuid

from sqlalchemy import delete
from sqlalchemy.engine import Connection

from storage.schema import gateway_tickets


def insert(conn: Connection, ticket_hash: str, device_id: uuid.UUID, *, expires_at: int) -> None:
    """Store a new ticket for the device."""
    conn.execute(
        gateway_tickets.insert().values(
            ticket_hash=ticket_hash, device_id=device_id, expires_at=expires_at
        )
    )


def redeem(conn: Connection, ticket_hash: str, *, now: int) -> uuid.UUID | None:
    """Delete the ticket and return its device if it had not expired.

    One statement: two connections presenting the same ticket cannot both succeed.
    """
    statement = (
        delete(gateway_tickets)
        .where(gateway_tickets.c.ticket_hash == ticket_hash)
        .returning(gateway_tickets.c.device_id, gateway_tickets.c.expires_at)
    )
    row = conn.execute(statement).first()
    if row is None or row.expires_at <= now:
        return None
    device_id: uuid.UUID = row.device_id
    return device_id


def delete_expired(conn: Connection, *, now: int) -> int:
    """Delete every expired ticket."""
    return conn.execute(delete(gateway_tickets).where(gateway_tickets.c.expires_at <= now)).rowcount
