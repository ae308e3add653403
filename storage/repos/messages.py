"""The delivery queue: messages waiting for one device, until acknowledged or expired."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from storage.repos._dialect import DRIVER_CHUNK, DRIVER_VALUES, DriverValues, driver_cursor_of
from storage.schema import messages


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to queue for ``device_id``."""

    id: uuid.UUID
    device_id: uuid.UUID
    submission_id: uuid.UUID
    content: bytes


@dataclass(frozen=True, slots=True)
class PendingMessage:
    """A queued message as delivery reads it, ids as their 16 raw bytes (the wire form:
    a page becomes envelopes and acknowledgements come back as bytes, so no ``UUID``
    objects are made on the delivery path)."""

    id: bytes
    sender_id: bytes
    sender_device_id: bytes
    content: bytes
    created_at: int

    @property
    def cursor(self) -> tuple[int, bytes]:
        """Delivery order key: after this message come those with a greater cursor."""
        return (self.created_at, self.id)


@dataclass(frozen=True)
class _QueueSql:
    """The queue's hot statements in one dialect (insert, page reads, acknowledged
    deletes), run on the driver's cursor: SQLAlchemy's execution and result processing
    cost ~9x the SQL itself for a 50-row page on SQLite (20 against 2.2 µs per row) and
    about doubled an insert. PostgreSQL's ids are read back as bytes by ``uuid_send``."""

    values: DriverValues
    sizes: dict[bool, str]
    page: dict[bool, str]
    delete: str
    arrays: bool = False
    """Inserts and deletes bind one array per column (PostgreSQL): one short statement
    whatever the batch, which psycopg parses once and caches, where a multi-row VALUES
    of thousands of placeholders was parsed again on every call (a fifth of the
    server's CPU in relay-live on PostgreSQL). The arrays are bound in binary (``%b``):
    psycopg's default chose text for them, escaping every element in Python (27 against
    3 µs of client CPU per queued 256-byte message, measured)."""


def _queue_sql(
    values: DriverValues, length: str, raw_id: Callable[[str], str], arrays: bool
) -> _QueueSql:
    # Built at import from the constants below only: nothing user-supplied reaches the SQL.
    mark = values.mark

    def select(columns: str, after: bool) -> str:
        later = f" AND (created_at, id) > ({mark}, {mark})" if after else ""
        return (
            f"SELECT {columns} FROM messages WHERE device_id = {mark} AND expires_at > {mark}"  # noqa: S608
            f"{later} ORDER BY created_at, id LIMIT {mark}"
        )

    ids = ", ".join(raw_id(column) for column in ("id", "sender_id", "sender_device_id"))
    return _QueueSql(
        values,
        sizes={after: select(f"{length}(content)", after) for after in (False, True)},
        page={after: select(f"{ids}, content, created_at", after) for after in (False, True)},
        # One primary-key lookup per acknowledged id: a row-value ``(device_id, id) IN
        # (...)`` made SQLite scan the whole queue for every batch. PostgreSQL joins the
        # arrays of ids to the primary key instead.
        delete=(
            "DELETE FROM messages USING unnest(%b::bytea[], %b::uuid[]) AS acked(id, device_id)"
            " WHERE messages.id = encode(acked.id, 'hex')::uuid"
            " AND messages.device_id = acked.device_id"
            if arrays
            else f"DELETE FROM messages WHERE id = {mark} AND device_id = {mark}"  # noqa: S608
        ),
        arrays=arrays,
    )


_QUEUE_SQL = {
    name: _queue_sql(DRIVER_VALUES[name], length, raw_id, arrays)
    for name, length, raw_id, arrays in (
        ("sqlite", "length", str, False),
        ("postgresql", "octet_length", "uuid_send({})".format, True),
    )
}

_COLUMNS = "id, sender_id, sender_device_id, device_id, submission_id, content"
_INSERT_ARRAYS = (
    f"INSERT INTO messages ({_COLUMNS}, created_at, expires_at)"  # noqa: S608 (constants)
    f" SELECT {_COLUMNS}, %s, %s FROM unnest(%b::uuid[], %b::uuid[], %b::uuid[], %b::uuid[],"
    f" %b::uuid[], %b::bytea[]) AS queued({_COLUMNS})"
    " ON CONFLICT (sender_device_id, submission_id) DO NOTHING RETURNING device_id"
)


def insert_batch(
    conn: Connection,
    batch: Sequence[NewMessage],
    *,
    sender_id: uuid.UUID,
    sender_device_id: uuid.UUID,
    created_at: int,
    expires_at: int,
) -> set[uuid.UUID]:
    """Queue one sender device's messages in one statement; returns the devices that got
    at least one. A message whose (sender device, submission id) is already queued is
    skipped."""
    return insert_from_senders(
        conn,
        [(sender_id, sender_device_id, message) for message in batch],
        created_at=created_at,
        expires_at=expires_at,
    )


# Any fixed key other than the migrations' (storage/migrations/env.py).
_QUEUE_ORDER_LOCK_ID = 0x51554555


def hold_queue_order(conn: Connection) -> None:
    """Call first in a transaction that queues messages, before taking its timestamp.

    Sessions read a queue after a ``(created_at, id)`` cursor, so a message must never
    commit after a later-stamped one, or an open session would step over it. Writers
    that stamp after this call commit in stamp order: on PostgreSQL it takes a
    transaction-scoped advisory lock (the writers of several server processes would
    otherwise interleave); on SQLite a write transaction already holds the database's
    only write lock from its start.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_QUEUE_ORDER_LOCK_ID})")


def insert_from_senders(
    conn: Connection,
    batch: Sequence[tuple[uuid.UUID, uuid.UUID, NewMessage]],
    *,
    created_at: int,
    expires_at: int,
) -> set[uuid.UUID]:
    """:func:`insert_batch` for the messages of many senders: (user id, device id,
    message) each, still one statement."""
    if not batch:
        return set()
    sql = _QUEUE_SQL[conn.dialect.name]
    bind = sql.values.bind_uuid
    inserted: set[Any] = set()
    with driver_cursor_of(conn) as cursor:
        if sql.arrays:
            columns = list(
                zip(
                    *[(m.id, s, d, m.device_id, m.submission_id, m.content) for s, d, m in batch],
                    strict=True,
                )
            )
            cursor.execute(_INSERT_ARRAYS, (created_at, expires_at, *map(list, columns)))
            return {device_id for (device_id,) in cursor.fetchall()}
        for start in range(0, len(batch), DRIVER_CHUNK):
            chunk = batch[start : start + DRIVER_CHUNK]
            params: list[Any] = []
            for sender_id, sender_device_id, m in chunk:
                params += (
                    bind(m.id),
                    bind(sender_id),
                    bind(sender_device_id),
                    bind(m.device_id),
                    bind(m.submission_id),
                    m.content,
                    created_at,
                    expires_at,
                )
            cursor.execute(_insert_sql(sql.values.mark, len(chunk)), params)
            inserted.update(device_id for (device_id,) in cursor.fetchall())
    return {sql.values.load_uuid(device_id) for device_id in inserted}


@functools.lru_cache(maxsize=64)
def _insert_sql(mark: str, rows: int) -> str:
    """A multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING device_id``: inserted
    rows report their device; duplicates of a queued (sender device, submission id) are
    skipped, within the statement too."""
    values = ", ".join(["(" + ", ".join([mark] * 8) + ")"] * rows)
    columns = "id, sender_id, sender_device_id, device_id, submission_id, content, created_at"
    return (
        f"INSERT INTO messages ({columns}, expires_at) VALUES {values}"  # noqa: S608 (placeholders)
        " ON CONFLICT (sender_device_id, submission_id) DO NOTHING RETURNING device_id"
    )


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a device's queue; ``more`` if messages may follow it."""

    messages: list[PendingMessage]
    more: bool


def fetch_page(
    conn: Connection,
    device_id: uuid.UUID,
    *,
    after: tuple[int, bytes] | None,
    now: int,
    limit: int,
    max_bytes: int | None = None,
) -> Page:
    """The next unexpired messages for the device, oldest first, after ``after``.

    At most ``limit`` messages, and, with ``max_bytes``, only as many as fit in that many
    content bytes (always at least one): sizes are read first, so a page of large
    messages never loads more than it will send.
    """
    sql = _QUEUE_SQL[conn.dialect.name]
    params: list[Any] = [sql.values.bind_uuid(device_id), now]
    if after is not None:
        params += [after[0], sql.values.bind_raw_id(after[1])]
    with driver_cursor_of(conn, binary_results=True) as cursor:
        count, truncated = limit, False
        if max_bytes is not None:
            cursor.execute(sql.sizes[after is not None], (*params, limit))
            sizes = [size for (size,) in cursor.fetchall()]
            if not sizes:
                return Page([], more=False)
            count = _leading_within(sizes, max_bytes)
            truncated = count < len(sizes)
        # The same range again, cut to the sizes that fit (on PostgreSQL a row committed
        # in between may take a place: it is delivered now, the one it displaced next).
        cursor.execute(sql.page[after is not None], (*params, count))
        found = [PendingMessage(*row) for row in cursor.fetchall()]
    return Page(found, more=truncated or len(found) == limit)


def _leading_within(sizes: Sequence[int], max_bytes: int) -> int:
    """How many leading sizes add up to at most ``max_bytes`` (at least one)."""
    total = 0
    for count, size in enumerate(sizes):
        total += size
        if count and total > max_bytes:
            return count
    return len(sizes)


def delete_acknowledged(conn: Connection, pairs: Sequence[tuple[uuid.UUID, bytes]]) -> int:
    """Delete (device id, message id bytes) pairs; a pair for another device matches
    nothing."""
    if not pairs:
        return 0
    sql = _QUEUE_SQL[conn.dialect.name]
    with driver_cursor_of(conn) as cursor:
        if sql.arrays:
            # The ids go as the bytes they arrived as: PostgreSQL makes them uuids (a
            # Python UUID per id was a twentieth of the server's CPU in relay-live).
            devices, ids = zip(*pairs, strict=True)
            cursor.execute(sql.delete, (list(ids), list(devices)))
        else:
            bind_raw_id, bind_uuid = sql.values.bind_raw_id, sql.values.bind_uuid
            rows = [
                (bind_raw_id(message_id), bind_uuid(device_id)) for device_id, message_id in pairs
            ]
            cursor.executemany(sql.delete, rows)
        return int(cursor.rowcount)


def delete_for_device(conn: Connection, device_id: uuid.UUID) -> int:
    """Drop every message queued for the device; returns how many."""
    return conn.execute(delete(messages).where(messages.c.device_id == device_id)).rowcount


def delete_expired(conn: Connection, *, now: int, limit: int) -> int:
    """Delete up to ``limit`` expired messages; returns how many went."""
    expired = select(messages.c.id).where(messages.c.expires_at <= now).limit(limit)
    return conn.execute(delete(messages).where(messages.c.id.in_(expired))).rowcount


def devices_over(conn: Connection, max_pending: int) -> list[uuid.UUID]:
    """Devices with more than ``max_pending`` queued messages."""
    statement = (
        select(messages.c.device_id)
        .group_by(messages.c.device_id)
        .having(func.count() > max_pending)
    )
    return list(conn.execute(statement).scalars())


def trim_device(conn: Connection, device_id: uuid.UUID, keep: int) -> int:
    """Delete a device's oldest messages so that the newest ``keep`` remain."""
    newest = (
        select(messages.c.id)
        .where(messages.c.device_id == device_id)
        .order_by(messages.c.created_at.desc(), messages.c.id.desc())
        .limit(keep)
    )
    statement = delete(messages).where(
        messages.c.device_id == device_id, messages.c.id.not_in(newest)
    )
    return conn.execute(statement).rowcount


def count_for_device(conn: Connection, device_id: uuid.UUID) -> int:
    """How many messages are queued for the device (expired ones included)."""
    statement = select(func.count()).select_from(messages).where(messages.c.device_id == device_id)
    return int(conn.execute(statement).scalar_one())
