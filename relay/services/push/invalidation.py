"""Batched removal of tokens the providers declared dead (compare-and-clear).

Removals are buffered and flushed in one ``executemany`` when ``batch_size`` are waiting
or every ``interval`` seconds, and once more at shutdown. Each removal only deletes the
token if it was not registered again since the send that found it dead, from the relay's
device tokens and from the faces' registrations alike.
"""

from __future__ import annotations

import logging
from functools import partial

import trio
from sqlalchemy.engine import Connection

from relay.observability import metrics
from relay.services.push.feedback import FeedbackHook, token_removed
from storage.db import Database
from storage.errors import StorageError
from storage.ids import now_us
from storage.repos import push_registrations, push_tokens
from storage.repos.push_tokens import Removal

log = logging.getLogger("relay.push")

# add() waits (back-pressure on deliveries) beyond this many batches of backlog.
_BACKLOG_BATCHES = 10


def _remove(conn: Connection, removals: list[Removal], feedback: FeedbackHook | None) -> int:
    # A dead token is dead for the relay's devices and for every face's registrations.
    removed = push_tokens.remove_unless_renewed(conn, removals)
    removed += push_registrations.remove_unless_renewed(conn, removals)
    if feedback is not None and removed:
        now = now_us()
        tokens = {item.token: item for item in removed}  # once per token, not per table
        feedback.queue(
            conn,
            [
                token_removed(item.token, item.app_id, item.platform, item.reason, now)
                for item in tokens.values()
            ],
            now=now,
        )
    return len(removed)


class TokenInvalidator:
    """See the module docstring."""

    def __init__(
        self,
        db: Database,
        *,
        batch_size: int,
        interval: float,
        feedback: FeedbackHook | None = None,
    ) -> None:
        self._db = db
        self._feedback = feedback
        self._batch_size = batch_size
        self._interval = interval
        self._pending: list[Removal] = []
        self._full = trio.Event()
        self._drained = trio.Event()
        self.removed = 0
        self.flushes = 0

    async def add(self, removal: Removal) -> None:
        """Queue a removal; waits while the backlog is too long."""
        while len(self._pending) >= self._batch_size * _BACKLOG_BATCHES:
            await self._drained.wait()
        self._pending.append(removal)
        if len(self._pending) >= self._batch_size:
            self._full.set()

    async def run(self, stopping: trio.Event) -> None:
        """Flush periodically until ``stopping``, then flush what is left."""
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                await stopping.wait()
                self._full.set()

            nursery.start_soon(watch)
            while not stopping.is_set():
                with trio.move_on_after(self._interval):
                    await self._full.wait()
                self._full = trio.Event()
                await self.flush()
            nursery.cancel_scope.cancel()
        await self.flush()

    async def flush(self) -> None:
        """Remove everything queued so far."""
        while self._pending:
            batch = self._pending[: self._batch_size]
            del self._pending[: len(batch)]
            try:
                removed = await self._db.write(
                    partial(_remove, removals=batch, feedback=self._feedback)
                )
            except StorageError as error:
                log.warning("could not remove %d dead push tokens: %s", len(batch), error)
                continue
            self.removed += removed
            metrics.PUSH_TOKENS_REMOVED.inc(removed)
            if removed and self._feedback is not None:
                self._feedback.wake()
            self.flushes += 1
            self._drained.set()
            self._drained = trio.Event()
