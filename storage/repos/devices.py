"""Devices: each belongs to one user and owns its keys, messages and tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from storage.repos._dialect import present_uuids
from storage.schema import devices


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A stored device."""

    id: uuid.UUID
    user_id: uuid.UUID
    name: str | None
    created_at: int


_COLUMNS = (devices.c.id, devices.c.user_id, devices.c.name, devices.c.created_at)


def insert(conn: Connection, device: DeviceRecord) -> None:
    """Create a device row."""
    conn.execute(
        devices.insert().values(
            id=device.id, user_id=device.user_id, name=device.name, created_at=device.created_at
        )
    )


def count_for_user(conn: Connection, user_id: uuid.UUID) -> int:
    """How many devices the user has."""
    statement = select(func.count()).select_from(devices).where(devices.c.user_id == user_id)
    return int(conn.execute(statement).scalar_one())


def list_for_user(conn: Connection, user_id: uuid.UUID) -> list[DeviceRecord]:
    """The user's devices, oldest first."""
    statement = (
        select(*_COLUMNS)
        .where(devices.c.user_id == user_id)
        .order_by(devices.c.created_at, devices.c.id)
    )
    return [DeviceRecord(*row) for row in conn.execute(statement)]


def get_owned(conn: Connection, device_id: uuid.UUID, user_id: uuid.UUID) -> DeviceRecord | None:
    """The device if it exists and belongs to ``user_id``."""
    statement = select(*_COLUMNS).where(devices.c.id == device_id, devices.c.user_id == user_id)
    row = conn.execute(statement).first()
    return None if row is None else DeviceRecord(*row)


def rename_owned(
    conn: Connection, device_id: uuid.UUID, user_id: uuid.UUID, name: str | None
) -> DeviceRecord | None:
    """Set the name of an owned device and return it; None if not found or not owned."""
    statement = (
        update(devices)
        .where(devices.c.id == device_id, devices.c.user_id == user_id)
        .values(name=name)
        .returning(*_COLUMNS)
    )
    row = conn.execute(statement).first()
    return None if row is None else DeviceRecord(*row)


def delete_owned(conn: Connection, device_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Delete an owned device (everything it owns cascades); False if not found or not owned."""
    statement = delete(devices).where(devices.c.id == device_id, devices.c.user_id == user_id)
    return conn.execute(statement).rowcount > 0


def owner_of(conn: Connection, device_id: uuid.UUID) -> uuid.UUID | None:
    """The user a device belongs to, or None if the device does not exist."""
    statement = select(devices.c.user_id).where(devices.c.id == device_id)
    return conn.execute(statement).scalar_one_or_none()


def lock(conn: Connection, device_id: uuid.UUID) -> bool:
    """Lock the device row until commit (PostgreSQL); False if it does not exist."""
    statement = select(devices.c.id).where(devices.c.id == device_id).with_for_update()
    return conn.execute(statement).first() is not None


def existing(conn: Connection, device_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these device ids exist."""
    return present_uuids(conn, devices, "id", device_ids)
