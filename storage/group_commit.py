"""Group commit: the units of work of concurrent requests run in one transaction, one
thread hop, instead of one each.

A thread hop costs more than the SQL of a small request here (measured with
``relay bench rest``: about 1 ms of CPU with the GIL handed back and forth), so units
submitted at the same time share one transaction, committed once, and every caller is
answered with its own result. When a unit fails, the batch rolls back and its units are
run again one by one, so only the failing one fails (units are plain transactional work:
running one again is safe). One instance batches
writes (message sends), another reads (the gateway's page fetches). The batcher is a task
in the root nursery; before it runs (or after it stopped) units run one by one.

A unit may also be an *item* of a batch function (:meth:`GroupCommit.submit_item`): the
items of one function that share a transaction go to one call of it, which can then do
the SQL of all of them in a few statements (``IN (...)`` lookups, one multi-row insert)
instead of a few statements each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar

import trio
from sqlalchemy.engine import Connection

from storage.db import Database

log = logging.getLogger("relay.storage")
T = TypeVar("T")
Item = TypeVar("Item")
BatchWork = Callable[[Connection, list[Item]], list[T]]


@dataclass
class _Unit(Generic[T]):
    work: Callable[[Connection], T] | None
    batch: BatchWork[Any, T] | None = None
    item: Any = None
    done: trio.Event = field(default_factory=trio.Event)
    result: Any = None
    error: BaseException | None = None

    def alone(self, conn: Connection) -> T:
        """This unit's work on its own."""
        if self.batch is not None:
            return self.batch(conn, [self.item])[0]
        assert self.work is not None
        return self.work(conn)


def _run_units(conn: Connection, units: list[_Unit[Any]]) -> list[Any]:
    results: list[Any] = [None] * len(units)
    batches: dict[BatchWork[Any, Any], list[int]] = {}
    for index, unit in enumerate(units):
        if unit.batch is None:
            results[index] = unit.alone(conn)
        else:
            batches.setdefault(unit.batch, []).append(index)
    for batch, indexes in batches.items():
        outcomes = batch(conn, [units[index].item for index in indexes])
        for index, outcome in zip(indexes, outcomes, strict=True):
            results[index] = outcome
    return results


class GroupCommit:
    """See the module docstring."""

    def __init__(
        self, db: Database, *, read_only: bool = False, max_batch: int = 64, capacity: int = 1024
    ) -> None:
        self._db = db
        self._read_only = read_only
        self._transaction = db.read if read_only else db.write
        self._max_batch = max_batch
        self._send, self._receive = trio.open_memory_channel[_Unit[Any]](capacity)
        self._running = False
        self.batches = 0
        self.units = 0

    async def submit(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a shared transaction; its result, or the error it raised."""
        return await self._submit(_Unit(work))

    async def submit_item(self, batch: BatchWork[Item, T], item: Item) -> T:
        """Have ``batch`` handle ``item`` in a shared transaction, together with the other
        items given to it meanwhile; the result it returned for ``item``. ``batch`` returns
        one result per item, in order; an error it raises fails the items it was given
        (then each is tried alone, as for :meth:`submit`)."""
        return await self._submit(_Unit(None, batch, item))

    async def _submit(self, unit: _Unit[T]) -> T:
        if not self._running:
            return await self._transaction(unit.alone)
        try:
            await self._send.send(unit)  # waits when the writer is this far behind
        except trio.BrokenResourceError:
            return await self._transaction(unit.alone)  # the batcher has stopped
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
        if self._db.observer is not None and not self._read_only:
            self._db.observer.write_batch(len(batch))
        try:
            results = await self._transaction(partial(_run_units, units=batch))
        except Exception:
            # Some unit failed and the whole batch rolled back: run each alone, so that
            # only the failing one fails (rare, and cheaper than a savepoint per unit).
            for unit in batch:
                try:
                    unit.result = await self._transaction(unit.alone)
                except Exception as error:  # the unit's own error, raised to its caller
                    unit.error = error
        else:
            for unit, result in zip(batch, results, strict=True):
                unit.result = result
        self.batches += 1
        self.units += len(batch)
        for unit in batch:
            unit.done.set()
