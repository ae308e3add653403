"""Per-device backup slots: the current version, and at most one upload in progress.

A slot is ``ACTIVE`` (nothing being uploaded) or ``UPLOADING`` (``pending_version`` is
reserved, since ``pending_at``, for the upload writing ``pending_object``). Reading a
slot for a change locks its row on PostgreSQL; SQLite writers are serialised anyway.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Row

from storage.repos._dialect import insert_ignoring_conflicts
from storage.schema import backups

ACTIVE = "ACTIVE"
UPLOADING = "UPLOADING"


@dataclass(frozen=True, slots=True)
class BackupSlot:
    """One device's backup row."""

    device_id: uuid.UUID
    current_version: int
    state: str
    pending_version: int | None
    pending_at: int | None
    current_object: str | None
    pending_object: str | None


def _slot(row: Row[Any]) -> BackupSlot:
    return BackupSlot(
        device_id=row.device_id,
        current_version=row.current_version,
        state=row.state,
        pending_version=row.pending_version,
        pending_at=row.pending_at,
        current_object=row.current_object,
        pending_object=row.pending_object,
    )


def get(conn: Connection, device_id: uuid.UUID, *, lock: bool = False) -> BackupSlot | None:
    """The device's slot, if it has one (locked until commit when ``lock``)."""
    statement = select(backups).where(backups.c.device_id == device_id)
    if lock:
        statement = statement.with_for_update()
    row = conn.execute(statement).first()
    return None if row is None else _slot(row)


def objects_of(conn: Connection, device_id: uuid.UUID) -> list[str]:
    """The blob keys the device's slot refers to (current and pending)."""
    slot = get(conn, device_id)
    if slot is None:
        return []
    return [key for key in (slot.current_object, slot.pending_object) if key is not None]


def ensure(conn: Connection, device_id: uuid.UUID, *, now: int) -> None:
    """Create an empty slot (version 0, active) unless the device has one."""
    insert_ignoring_conflicts(
        conn,
        backups,
        [{"device_id": device_id, "current_version": 0, "state": ACTIVE, "updated_at": now}],
    )


def reserve(
    conn: Connection, device_id: uuid.UUID, *, version: int, pending_object: str, now: int
) -> None:
    """Mark the slot as uploading ``version`` into ``pending_object``."""
    conn.execute(
        update(backups)
        .where(backups.c.device_id == device_id)
        .values(
            state=UPLOADING,
            pending_version=version,
            pending_at=now,
            pending_object=pending_object,
        )
    )


def complete(conn: Connection, device_id: uuid.UUID, *, pending_object: str, now: int) -> bool:
    """Make the upload into ``pending_object`` the current version.

    False if that upload no longer holds the reservation (it was taken over or reset).
    """
    statement = (
        update(backups)
        .where(
            backups.c.device_id == device_id,
            backups.c.state == UPLOADING,
            backups.c.pending_object == pending_object,
        )
        .values(
            current_version=backups.c.pending_version,
            current_object=pending_object,
            state=ACTIVE,
            pending_version=None,
            pending_at=None,
            pending_object=None,
            updated_at=now,
        )
    )
    return bool(conn.execute(statement).rowcount)


def reset_stale(conn: Connection, *, started_before: int, limit: int, now: int) -> list[BackupSlot]:
    """Return up to ``limit`` uploads reserved before ``started_before`` to active.

    Returns the slots as they were, so the caller can delete their pending objects.
    """
    statement = (
        select(backups)
        .where(backups.c.state == UPLOADING, backups.c.pending_at < started_before)
        .order_by(backups.c.pending_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stale = [_slot(row) for row in conn.execute(statement)]
    if stale:
        conn.execute(
            update(backups)
            .where(backups.c.device_id.in_([slot.device_id for slot in stale]))
            .values(
                state=ACTIVE,
                pending_version=None,
                pending_at=None,
                pending_object=None,
                updated_at=now,
            )
        )
    return stale
