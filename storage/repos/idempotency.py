"""Replayable responses of POST /v1/messages, per sender device and idempotency key."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import bindparam, delete, select
from sqlalchemy.engine import Connection

from storage.repos._dialect import insert_ignoring_conflicts
from storage.schema import idempotency_records

_record = idempotency_records.c
# Built once: every POST /v1/messages runs these, and building a statement (and its
# cache key) costs more than executing it.
# Two IN lists rather than a row-value IN: SQLite answers ``(a, b) IN (...)`` with a full
# scan, two lists with the primary key. They also match pairs nobody asked for (one
# device's key with another's), which lookups filter out; among expired records, deleting
# those is only the cleanup worker's job done early.
_KEYS = (
    _record.device_id.in_(bindparam("devices", expanding=True)),
    _record.idempotency_key.in_(bindparam("keys", expanding=True)),
)
_LOOKUP = select(_record.device_id, _record.idempotency_key, _record.response).where(
    *_KEYS, _record.expires_at > bindparam("now")
)
_DELETE_EXPIRED_KEYS = delete(idempotency_records).where(
    *_KEYS, _record.expires_at <= bindparam("now")
)


def _key_lists(keys: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> dict[str, list[uuid.UUID]]:
    return {
        "devices": list({device_id for device_id, _ in keys}),
        "keys": list({key for _, key in keys}),
    }


def lookup(conn: Connection, device_id: uuid.UUID, key: uuid.UUID, *, now: int) -> bytes | None:
    """The stored response for this key, unless it has expired."""
    return lookup_many(conn, [(device_id, key)], now=now).get((device_id, key))


def lookup_many(
    conn: Connection, keys: Sequence[tuple[uuid.UUID, uuid.UUID]], *, now: int
) -> dict[tuple[uuid.UUID, uuid.UUID], bytes]:
    """The unexpired stored responses of these (device, key) pairs, in one query."""
    if not keys:
        return {}
    wanted = set(keys)
    rows = conn.execute(_LOOKUP, {**_key_lists(keys), "now": now})
    return {(row[0], row[1]): bytes(row[2]) for row in rows if (row[0], row[1]) in wanted}


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
    store_many(conn, [(device_id, key, response)], now=now, expires_at=expires_at)


def store_many(
    conn: Connection,
    records: Sequence[tuple[uuid.UUID, uuid.UUID, bytes]],
    *,
    now: int,
    expires_at: int,
) -> None:
    """:func:`store` for many (device, key, response) records: two statements in all."""
    if not records:
        return
    keys = [(device_id, key) for device_id, key, _ in records]
    conn.execute(_DELETE_EXPIRED_KEYS, {**_key_lists(keys), "now": now})
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
            for device_id, key, response in records
        ],
    )


def delete_expired(conn: Connection, *, now: int) -> int:
    """Delete every expired record."""
    statement = delete(idempotency_records).where(idempotency_records.c.expires_at <= now)
    return conn.execute(statement).rowcount
