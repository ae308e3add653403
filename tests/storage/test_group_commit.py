"""Group commit: concurrent write units share one transaction; when one fails, only it
fails (the others are written after all) and its caller gets its error; nothing is lost
at stop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.lowlevel
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from relay.errors import InvalidInput
from storage.db import Database
from storage.errors import UniqueViolation
from storage.group_commit import BatchWork, GroupCommit
from storage.schema import api_keys


def add_key(name: str, key_hash: str | None = None) -> object:
    def work(conn: Connection) -> str:
        conn.execute(
            insert(api_keys).values(
                key_hash=key_hash or name.ljust(64, "0"), name=name, created_at=0
            )
        )
        return name

    return work


@asynccontextmanager
async def running(writes: GroupCommit) -> AsyncIterator[trio.Nursery]:
    """A nursery for callers, with the batcher running until they are all done."""
    stopping = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writes.run, stopping)
        await trio.lowlevel.checkpoint()
        async with trio.open_nursery() as callers:
            yield callers
        stopping.set()


async def names(db: Database) -> list[str]:
    return await db.read(
        lambda conn: sorted(row[0] for row in conn.execute(select(api_keys.c.name)))
    )


async def test_concurrent_units_share_batches_and_each_gets_its_result(db: Database) -> None:
    writes = GroupCommit(db, max_batch=16)
    results: dict[int, str] = {}

    async def one(index: int) -> None:
        results[index] = await writes.submit(add_key(f"key{index:03d}"))  # type: ignore[arg-type]

    async with running(writes) as callers:
        for index in range(40):
            callers.start_soon(one, index)
    assert results == {index: f"key{index:03d}" for index in range(40)}
    assert await names(db) == [f"key{index:03d}" for index in range(40)]
    assert writes.units == 40
    assert writes.batches < 40  # shared transactions, not one each


async def test_a_failing_unit_rolls_back_alone(db: Database) -> None:
    writes = GroupCommit(db)
    outcomes: dict[str, object] = {}

    def refuse(conn: Connection) -> None:
        conn.execute(
            insert(api_keys).values(key_hash="r".ljust(64, "0"), name="refused", created_at=0)
        )
        raise InvalidInput("no")

    async def call(label: str, work: object) -> None:
        try:
            outcomes[label] = await writes.submit(work)  # type: ignore[arg-type]
        except Exception as error:
            outcomes[label] = error

    async with running(writes) as callers:
        callers.start_soon(call, "first", add_key("first", "a" * 64))
        callers.start_soon(call, "duplicate", add_key("second", "a" * 64))
        callers.start_soon(call, "refuse", refuse)
        callers.start_soon(call, "last", add_key("last"))
    # The two units with the same key: whichever ran first wins, the other fails alone.
    won = [label for label in ("first", "duplicate") if isinstance(outcomes[label], str)]
    lost = [label for label in ("first", "duplicate") if label not in won]
    assert len(won) == 1
    assert isinstance(outcomes[lost[0]], UniqueViolation)
    assert isinstance(outcomes["refuse"], InvalidInput)
    assert outcomes["last"] == "last"
    winner = {"first": "first", "duplicate": "second"}[won[0]]
    assert await names(db) == sorted([winner, "last"])


async def test_without_a_running_writer_units_are_written_one_by_one(db: Database) -> None:
    writes = GroupCommit(db)
    assert await writes.submit(add_key("alone")) == "alone"  # type: ignore[arg-type]
    stopping = trio.Event()
    stopping.set()
    await writes.run(stopping)  # started and stopped: later writes still work
    assert await writes.submit(add_key("after")) == "after"  # type: ignore[arg-type]
    assert await names(db) == ["after", "alone"]
    with pytest.raises(UniqueViolation):
        await writes.submit(add_key("again", "after".ljust(64, "0")))  # type: ignore[arg-type]


def add_keys(calls: list[list[str]]) -> BatchWork[str, str]:
    """A batch function: every item in one multi-row insert; refuses the item "bad"."""

    def work(conn: Connection, items: list[str]) -> list[str]:
        calls.append(list(items))
        conn.execute(
            insert(api_keys),
            [{"key_hash": name.ljust(64, "0"), "name": name, "created_at": 0} for name in items],
        )
        if "bad" in items:
            raise InvalidInput("bad item")
        return [name.upper() for name in items]

    return work


async def test_items_of_one_batch_function_go_to_one_call(db: Database) -> None:
    calls: list[list[str]] = []
    batch = add_keys(calls)
    writes = GroupCommit(db, max_batch=64)
    results: dict[str, object] = {}

    async def one(name: str) -> None:
        try:
            results[name] = await writes.submit_item(batch, name)
        except InvalidInput as error:
            results[name] = error

    async with running(writes) as callers:
        for index in range(30):
            callers.start_soon(one, f"item{index:02d}")
        callers.start_soon(one, "bad")
    # Together at first; the batch with "bad" failed, so its items were tried alone.
    assert any(len(call) > 1 for call in calls)
    assert ["bad"] in calls
    assert isinstance(results.pop("bad"), InvalidInput)
    assert results == {f"item{index:02d}": f"ITEM{index:02d}" for index in range(30)}
    assert await names(db) == [f"item{index:02d}" for index in range(30)]
