"""Replayable responses of POST /v1/messages, per sender device and idempotency key."""

from __future__ import annotations

import uuid

from sqlalchemy import bindparam, delete, select
from sqlalchemy.engine import Connection

from storage.repos._dialect import insert_ignoring_conflicts
from storage.schema import idempotency_records

_record = idempotency_records.c
# Built once: every POST /v1/messages runs these, and building a statement (and its
# cache key) costs more than executing it.
_LOOKUP = select(_record.response).where(
    _record.device_id == bindparam("device_id"),
    _record.idempotency_key == bindparam("key"),
    _record.expires_at > bindparam("now"),
)
_DELETE_EXPIRED_KEY = delete(idempotency_records).where(
    _record.device_id == bindparam("device_id"),
    _record.idempotency_key == bindparam("key"),
    _record.expires_at <= bindparam("now"),
)


def lookup(conn: Connection, device_id: uuid.UUID, key: uuid.UUID, *, now: int) -> bytes | None:
    """The stored response for this key, unless it has expired."""
    params = {"device_id": device_id, "key": key, "now": now}
    value = conn.execute(_LOOKUP, params).scalar_one_or_none()
    return None if value is None else bytes(value)


def store(
    conn: Connection,
    device_id: uuid.UUID,
    key: uuid.UUID,
    response: bytes,
    *,
    now: int,
    expires_at: int,
) -> None:
    """Remember a response; a live record for the same key is kept as it is.

    An expired record with the same key is replaced, so a key may be reused once its
    TTL has passed, even before the cleanup worker removes it.
    """
    conn.execute(_DELETE_EXPIRED_KEY, {"device_id": device_id, "key": key, "now": now})
    insert_ignoring_conflicts(
        conn,
        idempotency_records,
        [
            {
                "device_id": device_id,
                "idempotency_key": key,
                "response": response,
                "expires_at": expires_at,
            }
        ],
    )


def delete_expired(conn: Connection, *, now: int) -> int:
    """Delete every expired record."""
    statement = delete(idempotency_records).where(idempotency_records.c.expires_at <= now)
    return conn.execute(statement).rowcount
