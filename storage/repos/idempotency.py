"""Replayable responses of POST /v1/messages, per sender device and idempotency key."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete
from sqlalchemy.engine import Connection

from storage.repos._dialect import DRIVER_CHUNK, driver_cursor_of, driver_values, marks
from storage.schema import idempotency_records

Pair = tuple[uuid.UUID, uuid.UUID]  # (device id, idempotency key)

# Every POST /v1/messages runs the lookup, delete and insert below, so they go to the
# driver's cursor: SQLAlchemy's execution cost more than their SQL. Two IN lists rather
# than a row-value IN: SQLite answers ``(a, b) IN (...)`` with a full scan, two lists with
# the primary key. They also match pairs nobody asked for (one device's key with
# another's), which lookups filter out; among expired records, deleting those is only the
# cleanup worker's job done early. The SQL holds placeholders only.
_LOOKUP = (
    "SELECT device_id, idempotency_key, response FROM idempotency_records"
    " WHERE device_id IN ({}) AND idempotency_key IN ({}) AND expires_at > {}"
)
_DELETE_EXPIRED_KEYS = (
    "DELETE FROM idempotency_records"
    " WHERE device_id IN ({}) AND idempotency_key IN ({}) AND expires_at <= {}"
)
_INSERT = (
    "INSERT INTO idempotency_records (device_id, idempotency_key, response, expires_at)"
    " VALUES {} ON CONFLICT DO NOTHING"
)


def _by_pairs(
    conn: Connection, template: str, pairs: Sequence[Pair], now: int
) -> tuple[str, list[Any]]:
    """``template`` (an IN list of devices, one of keys, then ``now``) for ``pairs``."""
    values = driver_values(conn)
    devices = list({device_id for device_id, _ in pairs})
    keys = list({key for _, key in pairs})
    sql = template.format(
        marks(values.mark, len(devices)), marks(values.mark, len(keys)), values.mark
    )
    return sql, [*map(values.bind_uuid, devices), *map(values.bind_uuid, keys), now]


def lookup(conn: Connection, device_id: uuid.UUID, key: uuid.UUID, *, now: int) -> bytes | None:
    """The stored response for this key, unless it has expired."""
    return lookup_many(conn, [(device_id, key)], now=now).get((device_id, key))


def lookup_many(conn: Connection, keys: Sequence[Pair], *, now: int) -> dict[Pair, bytes]:
    """The unexpired stored responses of these (device, key) pairs."""
    wanted = set(keys)
    load = driver_values(conn).load_uuid
    found: dict[Pair, bytes] = {}
    with driver_cursor_of(conn) as cursor:
        for start in range(0, len(keys), DRIVER_CHUNK):
            cursor.execute(*_by_pairs(conn, _LOOKUP, keys[start : start + DRIVER_CHUNK], now))
            for device_id, key, response in cursor.fetchall():
                pair = (load(device_id), load(key))
                if pair in wanted:
                    found[pair] = bytes(response)
    return found


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
    """:func:`store` for many (device, key, response) records: two statements per
    :data:`DRIVER_CHUNK` records."""
    values = driver_values(conn)
    bind = values.bind_uuid
    row = "(" + marks(values.mark, 4) + ")"
    with driver_cursor_of(conn) as cursor:
        for start in range(0, len(records), DRIVER_CHUNK):
            chunk = records[start : start + DRIVER_CHUNK]
            pairs = [(device_id, key) for device_id, key, _ in chunk]
            cursor.execute(*_by_pairs(conn, _DELETE_EXPIRED_KEYS, pairs, now))
            params: list[Any] = []
            for device_id, key, response in chunk:
                params += (bind(device_id), bind(key), response, expires_at)
            cursor.execute(_INSERT.format(", ".join([row] * len(chunk))), params)


def delete_expired(conn: Connection, *, now: int) -> int:
    """Delete every expired record."""
    statement = delete(idempotency_records).where(idempotency_records.c.expires_at <= now)
    return conn.execute(statement).rowcount
