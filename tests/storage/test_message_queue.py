"""The message queue repository on both backends: paging, de-duplication, deletion."""

from __future__ import annotations

import threading
import time
import uuid
from functools import partial

import pytest
import trio
from sqlalchemy.engine import Connection

from storage.db import Database, create_engine
from storage.ids import now_us, uuid7
from storage.repos import devices, messages, users
from storage.repos.devices import DeviceRecord
from storage.repos.messages import NewMessage
from storage.repos.users import UserRecord


@pytest.fixture
async def two_devices(db: Database) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """(user, device a, device b) rows to attach messages to."""
    user = UserRecord(uuid7(), f"queue_{uuid.uuid4().hex[:8]}", "h", now_us())
    a = DeviceRecord(uuid7(), user.id, None, now_us())
    b = DeviceRecord(uuid7(), user.id, None, now_us())

    def setup(conn: Connection) -> None:
        users.insert(conn, user)
        devices.insert(conn, a)
        devices.insert(conn, b)

    await db.write(setup)
    return user.id, a.id, b.id


def _queue(
    conn: Connection,
    ids: tuple[uuid.UUID, uuid.UUID, uuid.UUID],
    target: uuid.UUID,
    count: int,
    *,
    created_at: int,
    ttl: int = 10**9,
) -> set[uuid.UUID]:
    user, sender, _ = ids
    batch = [NewMessage(uuid7(), target, uuid.uuid4(), f"m{i}".encode()) for i in range(count)]
    return messages.insert_batch(
        conn,
        batch,
        sender_id=user,
        sender_device_id=sender,
        created_at=created_at,
        expires_at=created_at + ttl,
    )


async def test_pages_follow_the_cursor_within_one_timestamp(
    db: Database, two_devices: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, _, target = two_devices
    now = now_us()
    await db.write(lambda conn: _queue(conn, two_devices, target, 25, created_at=now))
    seen: list[bytes] = []
    cursor = None
    while True:
        fetch = partial(messages.fetch_page, device_id=target, after=cursor, now=now, limit=10)
        page = (await db.read(fetch)).messages
        if not page:
            break
        seen += [m.id for m in page]
        cursor = page[-1].cursor
    assert len(seen) == 25
    assert len(set(seen)) == 25
    assert seen == sorted(seen)


async def test_older_messages_come_first(
    db: Database, two_devices: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, _, target = two_devices
    now = now_us()
    await db.write(lambda conn: _queue(conn, two_devices, target, 1, created_at=now + 10))
    await db.write(lambda conn: _queue(conn, two_devices, target, 1, created_at=now))
    page = await db.read(
        lambda conn: messages.fetch_page(conn, target, after=None, now=now, limit=10).messages
    )
    assert [m.created_at for m in page] == [now, now + 10]


async def test_expired_messages_are_not_delivered_and_are_cleaned_up(
    db: Database, two_devices: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, _, target = two_devices
    now = now_us()
    await db.write(lambda conn: _queue(conn, two_devices, target, 3, created_at=now - 100, ttl=50))
    await db.write(lambda conn: _queue(conn, two_devices, target, 2, created_at=now))
    page = await db.read(
        lambda conn: messages.fetch_page(conn, target, after=None, now=now, limit=10).messages
    )
    assert len(page) == 2
    assert await db.write(lambda conn: messages.delete_expired(conn, now=now, limit=2)) == 2
    assert await db.write(lambda conn: messages.delete_expired(conn, now=now, limit=10)) == 1
    assert await db.read(lambda conn: messages.count_for_device(conn, target)) == 2


async def test_acknowledgements_only_delete_the_devices_own_messages(
    db: Database, two_devices: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, a, b = two_devices
    now = now_us()
    await db.write(lambda conn: _queue(conn, two_devices, a, 2, created_at=now))
    await db.write(lambda conn: _queue(conn, two_devices, b, 2, created_at=now))
    pages = {
        device: await db.read(
            lambda conn, device=device: (
                messages.fetch_page(conn, device, after=None, now=now, limit=10).messages
            )
        )
        for device in (a, b)
    }
    pairs = [(a, m.id) for m in pages[a]] + [(a, m.id) for m in pages[b]]
    assert await db.write(lambda conn: messages.delete_acknowledged(conn, pairs)) == 2
    assert await db.read(lambda conn: messages.count_for_device(conn, a)) == 0
    assert await db.read(lambda conn: messages.count_for_device(conn, b)) == 2


async def test_insert_reports_devices_and_skips_duplicates(
    db: Database, two_devices: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    user, sender, target = two_devices
    submission = uuid.uuid4()

    def insert(conn: Connection, message_id: uuid.UUID) -> set[uuid.UUID]:
        return messages.insert_batch(
            conn,
            [NewMessage(message_id, target, submission, b"x")],
            sender_id=user,
            sender_device_id=sender,
            created_at=now_us(),
            expires_at=now_us() + 10**9,
        )

    assert await db.write(lambda conn: insert(conn, uuid7())) == {target}
    assert await db.write(lambda conn: insert(conn, uuid7())) == set()
    assert await db.read(lambda conn: messages.count_for_device(conn, target)) == 1


async def test_inbox_trimming_keeps_the_newest(
    db: Database, two_devices: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, a, b = two_devices
    now = now_us()
    for offset in range(5):
        await db.write(
            lambda conn, offset=offset: _queue(conn, two_devices, a, 1, created_at=now + offset)
        )
    await db.write(lambda conn: _queue(conn, two_devices, b, 2, created_at=now))
    assert await db.read(lambda conn: messages.devices_over(conn, 3)) == [a]
    assert await db.write(lambda conn: messages.trim_device(conn, a, 3)) == 2
    page = await db.read(lambda conn: messages.fetch_page(conn, a, after=None, now=now, limit=10))
    assert [m.created_at for m in page.messages] == [now + 2, now + 3, now + 4]


async def test_a_byte_budget_shortens_pages_but_never_below_one_message(
    db: Database, two_devices: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    _, _, target = two_devices
    now = now_us()
    await db.write(lambda conn: _queue(conn, two_devices, target, 5, created_at=now))
    size = len((await db.read(partial(_first_page, target=target, now=now))).messages[0].content)

    def fetch(conn: Connection, max_bytes: int) -> messages.Page:
        return messages.fetch_page(conn, target, after=None, now=now, limit=10, max_bytes=max_bytes)

    two = await db.read(partial(fetch, max_bytes=2 * size + 1))
    assert (len(two.messages), two.more) == (2, True)
    one = await db.read(partial(fetch, max_bytes=1))
    assert (len(one.messages), one.more) == (1, True)
    everything = await db.read(partial(fetch, max_bytes=100 * size))
    assert (len(everything.messages), everything.more) == (5, False)
    full = await db.read(
        lambda conn: messages.fetch_page(conn, target, after=None, now=now, limit=5)
    )
    assert (len(full.messages), full.more) == (5, True)  # a full page: maybe more


def _first_page(conn: Connection, *, target: uuid.UUID, now: int) -> messages.Page:
    return messages.fetch_page(conn, target, after=None, now=now, limit=1)


async def test_large_inserts_span_statements_and_still_skip_duplicates(
    db: Database, two_devices: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    """Over 500 rows go in several statements; a repeated submission id is skipped
    whether it repeats within one statement or across two."""
    user, sender, target = two_devices
    repeated = uuid.uuid4()
    batch = [NewMessage(uuid7(), target, uuid.uuid4(), b"x") for _ in range(1200)]
    batch[3] = NewMessage(uuid7(), target, repeated, b"first")
    batch[10] = NewMessage(uuid7(), target, repeated, b"same statement")
    batch[900] = NewMessage(uuid7(), target, repeated, b"next statement")

    def insert(conn: Connection) -> set[uuid.UUID]:
        return messages.insert_batch(
            conn,
            batch,
            sender_id=user,
            sender_device_id=sender,
            created_at=now_us(),
            expires_at=now_us() + 10**9,
        )

    assert await db.write(insert) == {target}
    assert await db.read(lambda conn: messages.count_for_device(conn, target)) == 1198
    assert await db.write(insert) == set()
    assert await db.read(lambda conn: messages.count_for_device(conn, target)) == 1198


async def test_queue_writers_of_two_processes_commit_in_stamp_order(
    database_url: str, db: Database
) -> None:
    # A second engine on the same database, as another server worker holds.
    other = Database(create_engine(database_url), max_concurrency=2)
    holding = threading.Event()
    finished_at: list[int] = []

    def first(conn: Connection) -> None:
        messages.hold_queue_order(conn)
        holding.set()
        time.sleep(0.3)
        finished_at.append(now_us())

    def second(conn: Connection) -> int:
        messages.hold_queue_order(conn)
        return now_us()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(trio.to_thread.run_sync, db.write_sync, first))
            assert await trio.to_thread.run_sync(holding.wait, 5)
            stamp = await trio.to_thread.run_sync(other.write_sync, second)
        # The second writer stamped only once the first had committed.
        assert stamp > finished_at[0]
    finally:
        other.engine.dispose()
