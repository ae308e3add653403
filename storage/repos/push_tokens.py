"""The relay's per-device push token (one per device, replaced on update)."""

from __future__ import annotations

import uuid

from sqlalchemy.engine import Connection

from storage.repos._dialect import upsert
from storage.schema import push_tokens


def put(conn: Connection, device_id: uuid.UUID, token: str, *, now: int) -> None:
    """Set the device's token, replacing any previous one."""
    upsert(
        conn,
        push_tokens,
        {"device_id": device_id, "token": token, "updated_at": now},
        key=("device_id",),
        update=("token", "updated_at"),
    )
