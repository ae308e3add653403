"""The relay's per-device push token (one per device, replaced on update)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Table, and_, bindparam, delete, select
from sqlalchemy.engine import Connection

from storage.repos._dialect import present_uuids, upsert
from storage.schema import push_tokens


@dataclass(frozen=True, slots=True)
class PushTokenRow:
    """A device's push registration."""

    device_id: uuid.UUID
    token: str
    platform: str
    environment: str
    push_key: bytes | None
    updated_at: int


@dataclass(frozen=True, slots=True)
class Removal:
    """Remove ``token`` unless it was registered (again) at or after ``before``; the app,
    platform and provider reason say why (for the operator's feedback)."""

    token: str
    before: int
    app_id: uuid.UUID | None = None
    platform: str | None = None
    reason: str | None = None


def put(
    conn: Connection,
    device_id: uuid.UUID,
    token: str,
    *,
    now: int,
    platform: str = "fcm",
    environment: str = "production",
    push_key: bytes | None = None,
) -> None:
    """Set the device's token, replacing any previous one."""
    upsert(
        conn,
        push_tokens,
        {
            "device_id": device_id,
            "token": token,
            "updated_at": now,
            "platform": platform,
            "environment": environment,
            "push_key": push_key,
        },
        key=("device_id",),
        update=("token", "updated_at", "platform", "environment", "push_key"),
    )


def of_devices(conn: Connection, device_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, PushTokenRow]:
    """The registrations of those devices that have one."""
    if not device_ids:
        return {}
    rows = conn.execute(select(push_tokens).where(push_tokens.c.device_id.in_(device_ids)))
    return {
        row.device_id: PushTokenRow(
            row.device_id, row.token, row.platform, row.environment, row.push_key, row.updated_at
        )
        for row in rows
    }


def devices_with_tokens(conn: Connection, device_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Those of ``device_ids`` that have a push token."""
    return list(present_uuids(conn, push_tokens, "device_id", device_ids))


def remove_unless_renewed(conn: Connection, removals: Sequence[Removal]) -> list[Removal]:
    """Compare-and-clear: delete each token not registered since its ``before`` time;
    the removals that deleted something."""
    return compare_and_clear(conn, push_tokens, removals)


def compare_and_clear(conn: Connection, table: Table, removals: Sequence[Removal]) -> list[Removal]:
    """Delete the rows of ``table`` (``token``, ``updated_at``) holding each removal's
    token and last written before its ``before`` time; the removals that deleted rows
    (one statement each: removals are rare, and which ones took effect is reported)."""
    statement = delete(table).where(
        and_(
            table.c.token == bindparam("b_token"),
            table.c.updated_at < bindparam("b_before"),
        )
    )
    return [
        item
        for item in removals
        if conn.execute(statement, {"b_token": item.token, "b_before": item.before}).rowcount > 0
    ]
