"""Readiness: is every dependency of the API reachable right now?"""

from __future__ import annotations

import trio

from relay.events.hub import Hub
from storage.blobs import BlobStore
from storage.db import Database

OK = "ok"
ERROR = "error"


class HealthService:
    """Runs the ``/readyz`` checks, concurrently, each under its own timeout."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        hub: Hub,
        *,
        db_timeout: float,
        storage_timeout: float,
        pubsub_timeout: float,
    ) -> None:
        self._db = db
        self._blobs = blobs
        self._hub = hub
        self._db_timeout = db_timeout
        self._storage_timeout = storage_timeout
        self._pubsub_timeout = pubsub_timeout

    async def _storage_ok(self) -> bool:
        with trio.move_on_after(self._storage_timeout):
            return await self._blobs.healthy()
        return False

    async def readiness(self) -> dict[str, str]:
        """``{"status", "database", "storage", "pubsub"}``, each ``"ok"`` or ``"error"``."""
        results: dict[str, bool] = {}

        async def database() -> None:
            results["database"] = False
            with trio.move_on_after(self._db_timeout):
                results["database"] = await self._db.ping()

        async def storage() -> None:
            results["storage"] = await self._storage_ok()

        async def pubsub() -> None:
            results["pubsub"] = False
            with trio.move_on_after(self._pubsub_timeout):
                results["pubsub"] = await self._hub.healthy()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(database)
            nursery.start_soon(storage)
            nursery.start_soon(pubsub)
        report = {name: OK if healthy else ERROR for name, healthy in sorted(results.items())}
        report["status"] = OK if all(results.values()) else ERROR
        return report
