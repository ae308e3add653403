"""The shared ack batcher: size and time triggers, scoping, backpressure, flushing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import trio
from sqlalchemy.engine import Connection

from relay.crypto.sealing import Vault, new_key
from relay.gateway.acks import AckBatcher
from relay.services.delivery import DeliveryService
from relay.services.push.wakeups import Wakeups
from storage.db import Database
from storage.group_commit import GroupCommit
from storage.ids import now_us, uuid7
from storage.repos import devices, messages, users
from storage.repos.devices import DeviceRecord
from storage.repos.messages import NewMessage
from storage.repos.users import UserRecord
from tests.waiting import until


class Queue:
    """Two devices with queued messages."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.user = UserRecord(uuid7(), f"acks_{uuid.uuid4().hex[:8]}", "h", now_us())
        self.a = uuid7()
        self.b = uuid7()

    async def setup(self) -> None:
        def work(conn: Connection) -> None:
            users.insert(conn, self.user)
            for device in (self.a, self.b):
                devices.insert(conn, DeviceRecord(device, self.user.id, None, now_us()))

        await self.db.write(work)

    async def add(self, device: uuid.UUID, count: int) -> list[bytes]:
        """Queue ``count`` messages; their ids as the 16 bytes acknowledgements carry."""
        ids = [uuid7() for _ in range(count)]
        batch = [NewMessage(i, device, uuid.uuid4(), b"m") for i in ids]
        await self.db.write(
            lambda conn: messages.insert_batch(
                conn,
                batch,
                sender_id=self.user.id,
                sender_device_id=self.a,
                created_at=now_us(),
                expires_at=now_us() + 10**9,
            )
        )
        return [message_id.bytes for message_id in ids]

    async def count(self, device: uuid.UUID) -> int:
        return await self.db.read(lambda conn: messages.count_for_device(conn, device))

    async def empty(self, device: uuid.UUID) -> bool:
        return await self.count(device) == 0


@pytest.fixture
async def queue(db: Database) -> Queue:
    prepared = Queue(db)
    await prepared.setup()
    return prepared


@pytest.fixture
def delivery(db: Database) -> DeliveryService:
    wakeups = Wakeups(Vault(new_key()), delay_secs=0, ttl_secs=60, max_attempts=1)
    return DeliveryService(db, GroupCommit(db, read_only=True), wakeups)


@pytest.fixture
async def running(nursery: trio.Nursery, delivery: DeliveryService) -> AsyncIterator[AckBatcher]:
    batcher = AckBatcher(delivery, batch_size=5, flush_interval=1.0, capacity=20)
    stopping = trio.Event()
    nursery.start_soon(batcher.run, stopping)
    yield batcher
    stopping.set()


async def test_acks_wait_for_the_batch_to_fill(queue: Queue, running: AckBatcher) -> None:
    ids = await queue.add(queue.a, 5)
    await running.acknowledge(queue.a, ids[:3])
    await trio.sleep(0.2)
    assert await queue.count(queue.a) == 5  # still pending until flushed
    await running.acknowledge(queue.a, ids[3:])
    await until(lambda: queue.empty(queue.a), seconds=2)


async def test_a_partial_batch_is_flushed_after_the_interval(
    db: Database, queue: Queue, delivery: DeliveryService
) -> None:
    batcher = AckBatcher(delivery, batch_size=100, flush_interval=0.3, capacity=1000)
    ids = await queue.add(queue.a, 2)
    stopping = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(batcher.run, stopping)
        started = trio.current_time()
        await batcher.acknowledge(queue.a, ids)
        await until(lambda: queue.empty(queue.a))
        elapsed = trio.current_time() - started
        stopping.set()
    assert 0.25 <= elapsed < 3


async def test_sessions_share_one_statement(queue: Queue, running: AckBatcher) -> None:
    first = await queue.add(queue.a, 2)
    second = await queue.add(queue.b, 3)
    await running.acknowledge(queue.a, first)
    await running.acknowledge(queue.b, second)
    await running.flush()
    assert running.statements == 1
    assert await queue.count(queue.a) == await queue.count(queue.b) == 0


async def test_acks_are_scoped_to_the_acking_device(queue: Queue, running: AckBatcher) -> None:
    theirs = await queue.add(queue.b, 2)
    await running.acknowledge(queue.a, [*theirs, uuid.uuid4().bytes])
    await running.flush()
    assert await queue.count(queue.b) == 2


async def test_flush_returns_after_deletion(queue: Queue, running: AckBatcher) -> None:
    ids = await queue.add(queue.a, 1)
    await running.acknowledge(queue.a, ids)
    await running.flush()
    assert await queue.count(queue.a) == 0
    await running.flush()  # nothing pending: returns at once


async def test_a_full_buffer_applies_backpressure(
    db: Database, queue: Queue, delivery: DeliveryService
) -> None:
    batcher = AckBatcher(delivery, batch_size=5, flush_interval=60, capacity=6)
    ids = await queue.add(queue.a, 10)
    await batcher.acknowledge(queue.a, ids[:6])
    with trio.move_on_after(0.3) as blocked:
        await batcher.acknowledge(queue.a, ids[6:])  # no flusher running: must wait
    assert blocked.cancelled_caught
    stopping = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(batcher.run, stopping)
        with trio.fail_after(5):
            await batcher.acknowledge(queue.a, ids[6:])
            await batcher.flush()
        stopping.set()
    assert await queue.count(queue.a) == 0


async def test_a_full_buffer_holds_back_only_its_device(
    db: Database, queue: Queue, delivery: DeliveryService
) -> None:
    batcher = AckBatcher(delivery, batch_size=5, flush_interval=60, capacity=6)
    await batcher.acknowledge(queue.a, await queue.add(queue.a, 6))
    theirs = await queue.add(queue.b, 6)
    with trio.fail_after(1):  # no flusher running: only a's buffer is full
        await batcher.acknowledge(queue.b, theirs)


async def test_a_batch_takes_at_most_max_batch_pairs(
    db: Database, queue: Queue, delivery: DeliveryService
) -> None:
    batcher = AckBatcher(delivery, batch_size=2, flush_interval=60, capacity=10, max_batch=4)
    ids = await queue.add(queue.a, 10)
    await batcher.acknowledge(queue.a, ids)
    stopping = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(batcher.run, stopping)
        await batcher.flush()
        stopping.set()
    assert batcher.statements == 3  # 4 + 4 + 2
    assert await queue.count(queue.a) == 0


async def test_stopping_flushes_what_is_pending(
    db: Database, queue: Queue, delivery: DeliveryService
) -> None:
    batcher = AckBatcher(delivery, batch_size=100, flush_interval=60, capacity=1000)
    ids = await queue.add(queue.a, 3)
    stopping = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(batcher.run, stopping)
        await batcher.acknowledge(queue.a, ids)
        stopping.set()
    assert await queue.count(queue.a) == 0
