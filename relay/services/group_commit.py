"""Group commit: the units of work of concurrent requests run in one transaction, one
thread hop, instead of one each.

A thread hop costs more than the SQL of a small request here (measured with
``relay bench rest``: about 1 ms of CPU with the GIL handed back and forth), so units
submitted at the same time share one: each runs inside a savepoint of the batch's
transaction (a unit that fails rolls back alone and its caller gets the error), the batch
commits once, and every caller is answered with its own result. One instance batches
writes (message sends), another reads (the gateway's page fetches). The batcher is a task
in the root nursery; before it runs (or after it stopped) units run one by one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import trio
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from storage.db import Database, translate_errors

log = logging.getLogger("relay.storage")
T = TypeVar("T")


@dataclass
class _Unit(Generic[T]):
    work: Callable[[Connection], T]
    done: trio.Event = field(default_factory=trio.Event)
    result: Any = None
    error: BaseException | None = None


class GroupCommit:
    """See the module docstring."""

    def __init__(
        self, db: Database, *, read_only: bool = False, max_batch: int = 64, capacity: int = 1024
    ) -> None:
        self._db = db
        self._transaction = db.read if read_only else db.write
        self._max_batch = max_batch
        self._send, self._receive = trio.open_memory_channel[_Unit[Any]](capacity)
        self._running = False
        self.batches = 0
        self.units = 0

    async def submit(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a shared transaction; its result, or the error it raised."""
        if not self._running:
            return await self._transaction(work)
        unit: _Unit[T] = _Unit(work)
        try:
            await self._send.send(unit)  # waits when the writer is this far behind
        except trio.BrokenResourceError:
            return await self._transaction(work)  # the batcher has stopped
        await unit.done.wait()
        if unit.error is not None:
            raise unit.error
        result: T = unit.result
        return result

    async def run(self, stopping: trio.Event) -> None:
        """Write batches until ``stopping``, then what is still queued."""
        self._running = True
        try:
            async with trio.open_nursery() as nursery:

                async def stop() -> None:
                    await stopping.wait()
                    self._running = False
                    nursery.cancel_scope.cancel()

                nursery.start_soon(stop)
                while True:
                    first = await self._receive.receive()
                    await self._write_batch(first)
        finally:
            self._running = False
            with trio.CancelScope(shield=True):
                while True:
                    try:
                        unit = self._receive.receive_nowait()
                    except trio.WouldBlock:
                        break
                    await self._write_batch(unit)
                # Nothing can be queued between the last receive and this close.
                self._receive.close()

    async def _write_batch(self, first: _Unit[Any]) -> None:
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                batch.append(self._receive.receive_nowait())
            except trio.WouldBlock:
                break

        def work(conn: Connection) -> None:
            for unit in batch:
                savepoint = conn.begin_nested()
                try:
                    unit.result = unit.work(conn)
                except exc.SQLAlchemyError as error:
                    savepoint.rollback()
                    unit.error = translate_errors(error)
                except Exception as error:  # the unit's own refusal, raised to its caller
                    savepoint.rollback()
                    unit.error = error
                else:
                    savepoint.commit()

        try:
            await self._transaction(work)
        except Exception as error:
            for unit in batch:
                unit.result, unit.error = None, error
        self.batches += 1
        self.units += len(batch)
        for unit in batch:
            unit.done.set()
