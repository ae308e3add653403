"""The push core, assembled: a queue, a sender and workers over one database.

- :class:`~relay.services.push.queue.PushQueue`: queue deliveries, read their status;
- :class:`~relay.services.push.worker.PushWorker`: lease due jobs, deliver, record, retain;
- :class:`~relay.services.push.sender.PushSender`: the provider client, one attempt,
  synchronous sends;
- :func:`relay.services.push.outcomes.decide`: what each provider answer means.
"""

from __future__ import annotations

import time

import trio

from relay.services.push.apps import AppService
from relay.services.push.breaker import RemovalBreaker
from relay.services.push.config import PushConfig
from relay.services.push.feedback import FeedbackHook
from relay.services.push.invalidation import TokenInvalidator
from relay.services.push.outcomes import PushStats
from relay.services.push.queue import DueSignal, PushQueue
from relay.services.push.sender import PushSender
from relay.services.push.wakeups import Wakeups
from relay.services.push.worker import PushWorker
from storage.db import Database


class PushService:
    """See the module docstring."""

    def __init__(
        self, db: Database, apps: AppService, wakeups: Wakeups, config: PushConfig
    ) -> None:
        due = DueSignal()
        self.feedback = None if config.feedback is None else FeedbackHook(db, config.feedback)
        self.wakeups = wakeups
        self.stats = PushStats()
        self.breaker = RemovalBreaker(config.breaker, time.monotonic)
        self.invalidator = TokenInvalidator(
            db,
            batch_size=config.invalid_token_batch,
            interval=config.invalid_token_interval,
            feedback=self.feedback,
        )
        self.queue = PushQueue(
            db, due, max_attempts=config.retry.max_attempts, feedback=self.feedback
        )
        self.sender = PushSender(
            apps, self.queue, self.invalidator, self.breaker, self.stats, config
        )
        self.worker = PushWorker(
            db,
            apps,
            wakeups,
            self.sender,
            due,
            self.invalidator,
            self.stats,
            config,
            feedback=self.feedback,
        )

    async def run(
        self, stopping: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Deliver queued jobs until ``stopping``; then finish what is in flight and close
        the provider connections."""
        worker_done = trio.Event()
        async with trio.open_nursery() as nursery:
            await nursery.start(self.sender.run, worker_done)
            if self.feedback is not None:
                # Stops with the sender: events queued by the last outcomes still go out
                # at the next start (they are in the database).
                nursery.start_soon(self.feedback.run, worker_done)
            task_status.started()
            try:
                await self.worker.run(stopping)
            finally:
                worker_done.set()
