"""The delivery queue: messages waiting for one device, until acknowledged or expired."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

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
    """A queued message as delivery reads it."""

    id: uuid.UUID
    sender_id: uuid.UUID
    sender_device_id: uuid.UUID
    content: bytes
    created_at: int

    @property
    def cursor(self) -> tuple[int, uuid.UUID]:
        """Delivery order key: after this message come those with a greater cursor."""
        return (self.created_at, self.id)


# The hot statements are built once (building one and its cache key costs more than
# executing it): the insert per dialect, the page queries with and without a cursor.
_INSERTS: dict[str, Any] = {}
_ORDER = (messages.c.created_at, messages.c.id)
_PENDING = (
    messages.c.device_id == bindparam("device_id"),
    messages.c.expires_at > bindparam("now"),
)
_AFTER = tuple_(messages.c.created_at, messages.c.id) > tuple_(
    bindparam("after_at", type_=messages.c.created_at.type),
    bindparam("after_id", type_=messages.c.id.type),
)
_COLUMNS = (
    messages.c.id,
    messages.c.sender_id,
    messages.c.sender_device_id,
    messages.c.content,
    messages.c.created_at,
)


def _page_query(columns: Sequence[Any], *, after: bool) -> Any:
    where = (*_PENDING, _AFTER) if after else _PENDING
    return select(*columns).where(*where).order_by(*_ORDER).limit(bindparam("limit"))


_SIZES = {
    after: _page_query((messages.c.id, func.length(messages.c.content)), after=after)
    for after in (False, True)
}
_PAGES = {after: _page_query(_COLUMNS, after=after) for after in (False, True)}


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
    rows: list[dict[str, Any]] = [
        {
            "id": m.id,
            "sender_id": sender_id,
            "sender_device_id": sender_device_id,
            "device_id": m.device_id,
            "submission_id": m.submission_id,
            "content": m.content,
            "created_at": created_at,
            "expires_at": expires_at,
        }
        for sender_id, sender_device_id, m in batch
    ]
    statement = _INSERTS.get(conn.dialect.name)
    if statement is None:
        module = postgresql if conn.dialect.name == "postgresql" else sqlite
        statement = _INSERTS[conn.dialect.name] = (
            module.insert(messages)
            .on_conflict_do_nothing(index_elements=["sender_device_id", "submission_id"])
            .returning(messages.c.device_id)
        )
    return set(conn.execute(statement, rows).scalars())


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a device's queue; ``more`` if messages may follow it."""

    messages: list[PendingMessage]
    more: bool


def fetch_page(
    conn: Connection,
    device_id: uuid.UUID,
    *,
    after: tuple[int, uuid.UUID] | None,
    now: int,
    limit: int,
    max_bytes: int | None = None,
) -> Page:
    """The next unexpired messages for the device, oldest first, after ``after``.

    At most ``limit`` messages, and, with ``max_bytes``, only as many as fit in that many
    content bytes (always at least one): sizes are read first, so a page of large
    messages never loads more than it will send.
    """
    params: dict[str, Any] = {"device_id": device_id, "now": now, "limit": limit}
    if after is not None:
        params["after_at"], params["after_id"] = after
    statement = _PAGES[after is not None]
    truncated = False
    if max_bytes is not None:
        sizes = [(row[0], int(row[1])) for row in conn.execute(_SIZES[after is not None], params)]
        chosen = _within(sizes, max_bytes)
        if len(chosen) < len(sizes):
            truncated = True
            statement = (
                select(*_COLUMNS)
                .where(messages.c.device_id == device_id, messages.c.id.in_(chosen))
                .order_by(*_ORDER)
                .limit(limit)
            )
            params = {}
    found = [
        PendingMessage(row[0], row[1], row[2], bytes(row[3]), row[4])
        for row in conn.execute(statement, params)
    ]
    return Page(found, more=truncated or len(found) == limit)


def _within(sizes: Sequence[tuple[uuid.UUID, int]], max_bytes: int) -> list[uuid.UUID]:
    """The leading ids whose sizes add up to at most ``max_bytes`` (at least one)."""
    chosen: list[uuid.UUID] = []
    total = 0
    for message_id, size in sizes:
        total += size
        if chosen and total > max_bytes:
            break
        chosen.append(message_id)
    return chosen


# One primary-key lookup per acknowledged id, all in one executemany: a row-value
# ``(device_id, id) IN (...)`` made SQLite scan the whole queue for every batch.
_DELETE_ACKNOWLEDGED = delete(messages).where(
    messages.c.id == bindparam("acked_id"), messages.c.device_id == bindparam("acked_device")
)


def delete_acknowledged(conn: Connection, pairs: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> int:
    """Delete (device id, message id) pairs; a pair for another device matches nothing."""
    if not pairs:
        return 0
    rows = [{"acked_device": device_id, "acked_id": message_id} for device_id, message_id in pairs]
    return conn.execute(_DELETE_ACKNOWLEDGED, rows).rowcount


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
