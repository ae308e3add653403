"""The messaging cleanup worker: expiry and per-device inbox limits (obscura-contract §4.2)."""

from __future__ import annotations

import uuid

import httpx
import pytest
import trio
from sqlalchemy import Table, event, func, select
from sqlalchemy.engine import Connection, Engine

from relay.client import Outgoing, connect_gateway
from relay.registry import Services
from storage.db import Database
from storage.schema import gateway_tickets, idempotency_records
from tests.factories import new_device
from tests.messaging import nothing_more, numbered, pending, send_numbered


async def _rows(db: Database, table: Table) -> int:
    def count(conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    return await db.read(count)


@pytest.mark.settings(ttl_days=0)
async def test_expired_messages_are_never_delivered_and_get_deleted(
    http: httpx.AsyncClient, db: Database, services: Services
) -> None:
    recipient = await new_device(http, one_time_pre_keys=20)
    sender = await new_device(http)
    await send_numbered(sender, recipient, 3)
    async with connect_gateway(recipient.client) as gateway:
        await nothing_more(gateway)  # expired messages are never delivered
    expired, pruned = await services.messaging.clean_up(inbox_max_size=1000, batch_size=2)
    assert (expired, pruned) == (3, 0)
    assert await pending(db, recipient) == 0


async def test_inboxes_are_capped_oldest_first(
    http: httpx.AsyncClient, db: Database, services: Services
) -> None:
    recipient = await new_device(http, one_time_pre_keys=20)
    other = await new_device(http, one_time_pre_keys=20)
    sender = await new_device(http)
    await send_numbered(sender, recipient, 8)  # one request: one timestamp, ordered by id
    await send_numbered(sender, other, 3)
    assert await services.messaging.clean_up(inbox_max_size=5, batch_size=100) == (0, 3)
    assert await pending(db, recipient) == 5
    assert await pending(db, other) == 3
    async with connect_gateway(recipient.client) as gateway:
        with trio.fail_after(5):
            batch = await gateway.next_event()
    assert isinstance(batch, list)
    assert [e.message for e in batch] == [numbered(i) for i in range(3, 8)]


@pytest.mark.settings(messaging_idempotency_ttl_secs=1, ws_ticket_ttl_secs=1)
async def test_expired_idempotency_records_and_tickets_are_deleted(
    http: httpx.AsyncClient, db: Database, services: Services
) -> None:
    sender = await new_device(http)
    recipient = await new_device(http)
    await sender.client.send_messages([Outgoing(recipient.id, b"x")], idempotency_key=uuid.uuid4())
    await sender.client.gateway_ticket()
    assert await _rows(db, idempotency_records) == 1
    assert await _rows(db, gateway_tickets) == 1
    await trio.sleep(1.1)
    await services.messaging.clean_up(inbox_max_size=1000, batch_size=100)
    await services.tickets.delete_expired()
    assert await _rows(db, idempotency_records) == 0
    assert await _rows(db, gateway_tickets) == 0


@pytest.mark.settings(messaging_inbox_max_size=2, messaging_cleanup_interval_secs=1)
async def test_the_worker_prunes_periodically(http: httpx.AsyncClient, db: Database) -> None:
    recipient = await new_device(http)
    sender = await new_device(http)
    await send_numbered(sender, recipient, 6)
    with trio.fail_after(5):
        while await pending(db, recipient) > 2:  # noqa: ASYNC110 (state in the database)
            await trio.sleep(0.1)


@pytest.mark.settings(ttl_days=0, messaging_cleanup_interval_secs=1, messaging_batch_limit=2)
async def test_the_worker_deletes_expired_messages_in_batches_of_the_setting(
    http: httpx.AsyncClient, db: Database, engine: Engine
) -> None:
    recipient = await new_device(http)
    sender = await new_device(http)
    deletes: list[str] = []

    def count_deletes(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM MESSAGES"):
            deletes.append(statement)

    event.listen(engine, "before_cursor_execute", count_deletes)
    try:
        await send_numbered(sender, recipient, 5)
        with trio.fail_after(5):
            while await pending(db, recipient) > 0:  # noqa: ASYNC110 (state in the database)
                await trio.sleep(0.1)
    finally:
        event.remove(engine, "before_cursor_execute", count_deletes)
    assert len(deletes) >= 3  # 5 expired messages, at most 2 a transaction
