"""Idempotency records on both backends: batched lookups find exactly the pairs asked
for, and storing keeps a live record while replacing an expired one."""

from __future__ import annotations

import uuid

from sqlalchemy.engine import Connection

from storage.db import Database
from storage.ids import now_us, uuid7
from storage.repos import devices, idempotency, users
from storage.repos._dialect import DRIVER_CHUNK
from storage.repos.devices import DeviceRecord
from storage.repos.users import UserRecord


async def _devices(db: Database, count: int) -> list[uuid.UUID]:
    user = UserRecord(uuid7(), f"idem_{uuid.uuid4().hex[:8]}", "h", now_us())
    records = [DeviceRecord(uuid7(), user.id, None, now_us()) for _ in range(count)]

    def setup(conn: Connection) -> None:
        users.insert(conn, user)
        for record in records:
            devices.insert(conn, record)

    await db.write(setup)
    return [record.id for record in records]


async def test_batched_lookups_find_only_the_pairs_asked_for(db: Database) -> None:
    a, b = await _devices(db, 2)
    key_a, key_b, unknown = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = now_us()

    def work(conn: Connection) -> dict[tuple[uuid.UUID, uuid.UUID], bytes]:
        idempotency.store_many(
            conn, [(a, key_a, b"first"), (b, key_b, b"second")], now=now, expires_at=now + 10**9
        )
        # (a, key_b) and (b, key_a) match both IN lists but were never stored.
        return idempotency.lookup_many(
            conn, [(a, key_a), (b, key_b), (a, key_b), (b, key_a), (a, unknown)], now=now
        )

    assert await db.write(work) == {(a, key_a): b"first", (b, key_b): b"second"}


async def test_a_live_record_is_kept_and_an_expired_one_replaced(db: Database) -> None:
    [device] = await _devices(db, 1)
    live, expired = uuid.uuid4(), uuid.uuid4()
    now = now_us()

    def work(conn: Connection) -> dict[tuple[uuid.UUID, uuid.UUID], bytes]:
        idempotency.store_many(conn, [(device, live, b"kept")], now=now, expires_at=now + 10**9)
        idempotency.store_many(conn, [(device, expired, b"old")], now=now, expires_at=now + 1)
        later = now + 2
        idempotency.store_many(
            conn,
            [(device, live, b"ignored"), (device, expired, b"new")],
            now=later,
            expires_at=later + 10**9,
        )
        return idempotency.lookup_many(conn, [(device, live), (device, expired)], now=later)

    assert await db.write(work) == {(device, live): b"kept", (device, expired): b"new"}


async def test_batches_larger_than_a_driver_chunk_are_split(db: Database) -> None:
    count = DRIVER_CHUNK + 20
    ids = await _devices(db, count)
    keys = [uuid.uuid4() for _ in ids]
    now = now_us()

    def work(conn: Connection) -> tuple[dict[tuple[uuid.UUID, uuid.UUID], bytes], set[uuid.UUID]]:
        idempotency.store_many(
            conn,
            [(device, key, device.bytes) for device, key in zip(ids, keys, strict=True)],
            now=now,
            expires_at=now + 10**9,
        )
        found = idempotency.lookup_many(conn, list(zip(ids, keys, strict=True)), now=now)
        return found, devices.existing(conn, {*ids, uuid.uuid4()})

    found, known = await db.write(work)
    assert found == {(device, key): device.bytes for device, key in zip(ids, keys, strict=True)}
    assert known == set(ids)
