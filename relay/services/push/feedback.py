"""The feedback webhook (``RELAY_PUSH_FEEDBACK_URL``): a signed JSON POST per removed
token and per push job that finally failed.

Events are queued in the same transaction as what they report (``push_feedback``), so
none is lost to a crash, and delivered by their own task: a slow or dead receiver never
holds up a push. Each POST carries ``X-Relay-Timestamp`` (Unix seconds) and
``X-Relay-Signature: sha256=<hex>``, the HMAC-SHA256 under ``RELAY_PUSH_FEEDBACK_SECRET``
of ``<timestamp>.<body>``. A 2xx answer delivers the event; anything else is retried
with doubling delays (1 s up to 5 min), at most ``RELAY_PUSH_FEEDBACK_MAX_ATTEMPTS``
times; at most ``RELAY_PUSH_FEEDBACK_MAX_PENDING`` events wait (newer ones are dropped,
with a warning). Delivery is at least once: receivers deduplicate by ``id``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import trio
from sqlalchemy.engine import Connection

from storage.db import Database
from storage.errors import StorageError
from storage.ids import MICROS_PER_SECOND, now_us
from storage.repos import push_feedback

log = logging.getLogger("relay.push.feedback")

_BATCH = 20
_HOLD_SECS = 60  # a leased event is someone's for this long
_POLL_SECS = 1.0
_TIMEOUT_SECS = 10.0
_MAX_DELAY_SECS = 300


@dataclass(frozen=True)
class FeedbackConfig:
    """Where events go and how they are signed."""

    url: str
    secret: bytes
    max_attempts: int = 8
    max_pending: int = 10000


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Relay-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _event(kind: str, fields: dict[str, object], now: int) -> str:
    stamp = datetime.fromtimestamp(now / MICROS_PER_SECOND, UTC).isoformat(timespec="seconds")
    return json.dumps({"id": str(uuid.uuid4()), "event": kind, "time": stamp, **fields})


def job_failed(
    job_id: uuid.UUID,
    app_id: uuid.UUID | None,
    platform: str | None,
    token: str | None,
    reason: str | None,
    attempts: int,
    now: int,
) -> str:
    """The body of a ``push.failed`` event."""
    fields: dict[str, object] = {
        "job": str(job_id),
        "app": None if app_id is None else str(app_id),
        "platform": platform,
        "token": token,
        "reason": reason,
        "attempts": attempts,
    }
    return _event("push.failed", fields, now)


def token_removed(
    token: str, app_id: uuid.UUID | None, platform: str | None, reason: str | None, now: int
) -> str:
    """The body of a ``token.removed`` event."""
    fields: dict[str, object] = {
        "app": None if app_id is None else str(app_id),
        "platform": platform,
        "token": token,
        "reason": reason,
    }
    return _event("token.removed", fields, now)


class FeedbackHook:
    """Queues events (inside the caller's transaction) and delivers them."""

    def __init__(self, db: Database, config: FeedbackConfig) -> None:
        self._db = db
        self._config = config
        self._wake = trio.Event()
        self.delivered = 0
        self.dropped = 0

    def queue(self, conn: Connection, bodies: Sequence[str], *, now: int) -> None:
        """Queue events in the transaction of what they report (then :meth:`wake`)."""
        added = push_feedback.add(conn, bodies, now=now, max_pending=self._config.max_pending)
        if added < len(bodies):
            self.dropped += len(bodies) - added
            log.warning(
                "push feedback: %d events dropped, %d already wait for %s",
                len(bodies) - added,
                self._config.max_pending,
                self._config.url,
            )

    def wake(self) -> None:
        """Deliver what was just queued without waiting for the next poll."""
        self._wake.set()

    async def run(self, stopping: trio.Event) -> None:
        """Deliver events until ``stopping``."""
        async with httpx.AsyncClient(timeout=_TIMEOUT_SECS) as http:
            while not stopping.is_set():
                try:
                    busy = await self._deliver_some(http)
                except StorageError as error:
                    log.warning("push feedback paused: %s", error)
                    busy = False
                if not busy:
                    with trio.move_on_after(_POLL_SECS):
                        await self._wake.wait()
                    self._wake = trio.Event()

    async def _deliver_some(self, http: httpx.AsyncClient) -> bool:
        now = now_us()
        events = await self._db.write(
            lambda conn: push_feedback.lease(
                conn, now=now, limit=_BATCH, hold_us=_HOLD_SECS * MICROS_PER_SECOND
            )
        )
        if not events:
            return False
        done: list[uuid.UUID] = []
        retries: list[tuple[uuid.UUID, int, int]] = []
        for event in events:
            if await self._post(http, event.body):
                done.append(event.id)
                self.delivered += 1
                continue
            attempts = event.attempts + 1
            if attempts >= self._config.max_attempts:
                log.warning("push feedback: gave up on an event after %d attempts", attempts)
                done.append(event.id)
                continue
            delay = min(2 ** (attempts - 1), _MAX_DELAY_SECS) * MICROS_PER_SECOND
            retries.append((event.id, attempts, now_us() + delay))

        def record(conn: Connection) -> None:
            push_feedback.delivered(conn, done)
            for event_id, attempts, at in retries:
                push_feedback.retry(conn, event_id, attempts=attempts, at=at)

        await self._db.write(record)
        return len(events) == _BATCH

    async def _post(self, http: httpx.AsyncClient, body: str) -> bool:
        data = body.encode()
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "x-relay-timestamp": str(timestamp),
            "x-relay-signature": signature(self._config.secret, timestamp, data),
        }
        try:
            response = await http.post(self._config.url, content=data, headers=headers)
        except httpx.HTTPError as error:
            log.info("push feedback: %s unreachable: %s", self._config.url, error)
            return False
        return 200 <= response.status_code < 300
