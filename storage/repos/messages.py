"""Pending messages (the delivery queue itself arrives with the gateway)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete
from sqlalchemy.engine import Connection

from storage.schema import messages


def delete_for_device(conn: Connection, device_id: uuid.UUID) -> int:
    """Drop every message queued for the device; returns how many."""
    return conn.execute(delete(messages).where(messages.c.device_id == device_id)).rowcount
