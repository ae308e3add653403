"""Periodic background work, run in the root nursery.

Each worker waits on the ``stopping`` event between rounds, so shutdown interrupts the
wait at once but never a round in progress (which gets the shutdown grace period).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from relay.config import Settings
from relay.services.registry import Services
from storage.errors import StorageError

log = logging.getLogger("relay.workers")

Worker = Callable[[trio.Event], Awaitable[None]]

_CLEANUP_BATCH = 1000


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


def background_workers(settings: Settings, services: Services) -> list[Worker]:
    """Every periodic worker enabled by ``settings``."""
    workers = []
    if settings.auth_refresh_token_cleanup_interval_secs > 0:

        async def refresh_token_cleanup() -> None:
            deleted = await services.sessions.delete_expired_refresh_tokens(
                batch_size=_CLEANUP_BATCH
            )
            if deleted:
                log.info("deleted %d expired refresh tokens", deleted)

        workers.append(
            periodic(
                "refresh-token cleanup",
                settings.auth_refresh_token_cleanup_interval_secs,
                refresh_token_cleanup,
            )
        )
    return workers
