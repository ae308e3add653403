"""Periodic background work, run in the root nursery.

Each worker waits on the ``stopping`` event between rounds, so shutdown interrupts the
wait at once but never a round in progress (which gets the shutdown grace period).
A round that fails on storage is logged and retried at the next interval.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial

import trio

from relay.config import Settings
from relay.observability import metrics
from relay.registry import Services
from storage.errors import StorageError

log = logging.getLogger("relay.workers")

Worker = Callable[[trio.Event], Awaitable[None]]

_TOKEN_CLEANUP_BATCH = 1000
_BACKUP_RESET_BATCH = 50
# Often enough that the write-ahead log stays a few MB under load, so commits almost
# never reach SQLite's own checkpoint mark (see storage.db).
_WAL_CHECKPOINT_INTERVAL_SECS = 1.0
# Gauges read off the services (pools, breakers, the push queue's backlog).
_METRICS_SAMPLE_SECS = 5.0


def periodic(name: str, interval: float, work: Callable[[], Awaitable[object]]) -> Worker:
    """A worker that runs ``work`` every ``interval`` seconds until stopped."""

    async def worker(stopping: trio.Event) -> None:
        while True:
            with trio.move_on_after(interval):
                await stopping.wait()
            if stopping.is_set():
                return
            try:
                await work()
            except StorageError as error:
                log.warning("%s failed, retrying next round: %s", name, error)

    return worker


def process_metrics(services: Services) -> Worker:
    """This process's gauges read off its services: provider pools and removal
    breakers (every process has its own)."""

    async def sample() -> None:
        for provider, (connections, streams) in services.push.sender.pool_usage().items():
            metrics.PROVIDER_CONNECTIONS.labels(provider).set(connections)
            metrics.PROVIDER_STREAMS.labels(provider).set(streams)
        for app, held in services.push.breaker.held().items():
            metrics.PUSH_BREAKER_OPEN.labels(app).set(1 if held else 0)

    return periodic("metrics sampling", _METRICS_SAMPLE_SECS, sample)


async def _sample_push_queue(services: Services) -> None:
    depth, oldest_due_age = await services.push.queue.backlog()
    metrics.PUSH_QUEUE_DEPTH.set(depth)
    metrics.PUSH_QUEUE_OLDEST_DUE_AGE.set(oldest_due_age)


def background_workers(settings: Settings, services: Services) -> list[Worker]:
    """Every periodic worker enabled by ``settings``."""

    async def message_cleanup() -> None:
        expired, pruned = await services.messaging.clean_up(
            inbox_max_size=settings.messaging_inbox_max_size,
            batch_size=settings.messaging_batch_limit,
        )
        await services.tickets.delete_expired()
        if expired or pruned:
            log.info("deleted %d expired messages, pruned %d over inbox limits", expired, pruned)

    async def attachment_cleanup() -> None:
        deleted = await services.attachments.delete_expired(
            batch_size=settings.attachment_cleanup_batch_size
        )
        if deleted:
            log.info("deleted %d expired attachments", deleted)

    async def backup_cleanup() -> None:
        reset = await services.backups.reset_stale_uploads(batch_size=_BACKUP_RESET_BATCH)
        if reset:
            log.info("reset %d stale backup uploads", reset)

    async def refresh_token_cleanup() -> None:
        deleted = await services.sessions.delete_expired_refresh_tokens(
            batch_size=_TOKEN_CLEANUP_BATCH
        )
        if deleted:
            log.info("deleted %d expired refresh tokens", deleted)

    workers = [
        periodic("message cleanup", settings.messaging_cleanup_interval_secs, message_cleanup),
        periodic(
            "attachment cleanup", settings.attachment_cleanup_interval_secs, attachment_cleanup
        ),
        periodic("backup cleanup", settings.backup_cleanup_interval_secs, backup_cleanup),
    ]
    workers.append(
        # The queue is shared: the process doing the periodic work samples it.
        periodic("push queue metrics", _METRICS_SAMPLE_SECS, partial(_sample_push_queue, services))
    )
    if not services.db.is_postgresql:
        workers.append(
            periodic("WAL checkpoint", _WAL_CHECKPOINT_INTERVAL_SECS, services.db.checkpoint)
        )
    if settings.auth_refresh_token_cleanup_interval_secs > 0:
        workers.append(
            periodic(
                "refresh-token cleanup",
                settings.auth_refresh_token_cleanup_interval_secs,
                refresh_token_cleanup,
            )
        )
    return workers
