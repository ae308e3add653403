"""Attachment rows: an id and an expiry per uploaded blob (attachments have no owner)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from storage.schema import attachments


@dataclass(frozen=True, slots=True)
class AttachmentRecord:
    """One stored attachment."""

    id: uuid.UUID
    size: int
    created_at: int
    expires_at: int


def insert(conn: Connection, record: AttachmentRecord) -> None:
    """Record an uploaded attachment."""
    conn.execute(
        attachments.insert().values(
            id=record.id,
            size=record.size,
            created_at=record.created_at,
            expires_at=record.expires_at,
        )
    )


def get_unexpired(
    conn: Connection, attachment_id: uuid.UUID, *, now: int
) -> AttachmentRecord | None:
    """The attachment, unless it is unknown or has expired."""
    row = conn.execute(
        select(attachments).where(attachments.c.id == attachment_id, attachments.c.expires_at > now)
    ).first()
    return (
        None if row is None else AttachmentRecord(row.id, row.size, row.created_at, row.expires_at)
    )


def expired(conn: Connection, *, now: int, limit: int) -> list[uuid.UUID]:
    """Up to ``limit`` ids of expired attachments, oldest expiry first."""
    statement = (
        select(attachments.c.id)
        .where(attachments.c.expires_at <= now)
        .order_by(attachments.c.expires_at)
        .limit(limit)
    )
    return list(conn.execute(statement).scalars())


def delete_many(conn: Connection, ids: Sequence[uuid.UUID]) -> int:
    """Delete these attachment rows in one statement."""
    if not ids:
        return 0
    return conn.execute(delete(attachments).where(attachments.c.id.in_(ids))).rowcount
