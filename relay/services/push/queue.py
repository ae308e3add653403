"""The durable push queue's API: queue deliveries, read their status, wake the workers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import trio
from sqlalchemy.engine import Connection

from providers.message import Environment, Platform, PushMessage
from relay.services.push.e2ee import encrypted
from relay.services.push.feedback import FeedbackHook, job_failed
from storage.db import Database
from storage.ids import MICROS_PER_SECOND, now_us
from storage.repos import push_jobs
from storage.repos.push_jobs import JobRecord as JobRecord  # the listing's record
from storage.repos.push_jobs import JobState, JobStatus, NewJob


@dataclass(frozen=True)
class Delivery:
    """One notification for one registration (synchronous and queued API paths)."""

    platform: Platform
    token: str
    message: PushMessage
    environment: Environment = Environment.PRODUCTION
    push_key: bytes | None = None
    # Sent in the clear next to ``encrypted_data`` (the id the client picks its key by).
    extra: tuple[tuple[str, str], ...] = ()

    def message_to_send(self) -> PushMessage:
        """The message, end-to-end encrypted when a push key is given."""
        if self.push_key is None:
            return self.message
        return encrypted(self.message, self.push_key, dict(self.extra))


def masked_token(token: str | None) -> str:
    """A device token as listings show it: enough to recognise, not enough to use."""
    if not token:
        return "-"
    return token if len(token) <= 8 else f"{token[:6]}…{token[-2:]}"


class DueSignal:
    """Tells the workers to look for due jobs now rather than at their next poll."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        """Wake the workers."""
        self._event.set()

    async def wait(self, seconds: float) -> None:
        """Until :meth:`set` or for ``seconds``, whichever comes first."""
        with trio.move_on_after(seconds):
            await self._event.wait()
        self._event = trio.Event()


class PushQueue:
    """Queues deliveries for the workers (:mod:`relay.services.push.worker`)."""

    def __init__(
        self,
        db: Database,
        due: DueSignal,
        *,
        max_attempts: int,
        feedback: FeedbackHook | None = None,
    ) -> None:
        self._db = db
        self._due = due
        self.feedback = feedback
        """The operator's webhook (failed synchronous sends are reported too)."""
        self.max_attempts = max_attempts
        """Attempts a queued job gets."""

    async def backlog(self) -> tuple[int, float]:
        """Jobs waiting, and for how many seconds the longest-due one has been due."""
        now = now_us()
        count, oldest = await self._db.read(lambda conn: push_jobs.backlog(conn, now=now))
        return count, 0.0 if oldest is None else (now - oldest) / MICROS_PER_SECOND

    def wake(self) -> None:
        """Look for due jobs now (after queueing in a transaction of one's own)."""
        self._due.set()

    def jobs_for(
        self,
        app_id: uuid.UUID,
        deliveries: Sequence[Delivery],
        *,
        expires_at: int | None = None,
        campaign_id: int | None = None,
    ) -> list[NewJob]:
        """The queue rows for deliveries (sealed where a push key is given), for callers
        that queue them inside a transaction of their own (then :meth:`wake`)."""
        return [
            NewJob(
                app_id,
                item.platform.value,
                item.environment.value,
                item.token,
                item.message_to_send().to_json(),
                expires_at=expires_at,
                campaign_id=campaign_id,
            )
            for item in deliveries
        ]

    async def enqueue(
        self, app_id: uuid.UUID, deliveries: Sequence[Delivery], *, expires_at: int | None = None
    ) -> list[uuid.UUID]:
        """Queue deliveries (end-to-end encrypted where a push key is given)."""
        jobs = self.jobs_for(app_id, deliveries, expires_at=expires_at)
        ids = await self._db.write(
            lambda conn: push_jobs.enqueue(conn, jobs, now=now_us(), max_attempts=self.max_attempts)
        )
        self.wake()
        return ids

    async def record_finished(
        self, app_id: uuid.UUID, finished: Sequence[tuple[Delivery, JobState, str | None]]
    ) -> None:
        """Record deliveries sent at once (their final state and reason)."""
        jobs = self.jobs_for(app_id, [delivery for delivery, _, _ in finished])
        rows = [
            (job, state, reason) for job, (_, state, reason) in zip(jobs, finished, strict=True)
        ]
        feedback = self.feedback
        now = now_us()

        def work(conn: Connection) -> None:
            ids = push_jobs.record_finished(conn, rows, now=now, max_attempts=self.max_attempts)
            if feedback is None:
                return
            failed = [
                job_failed(job_id, app_id, job.platform, job.token, reason, 1, now)
                for job_id, (job, state, reason) in zip(ids, rows, strict=True)
                if state is JobState.FAILED
            ]
            if failed:
                feedback.queue(conn, failed, now=now)

        await self._db.write(work)
        if feedback is not None:
            feedback.wake()

    async def recent(
        self,
        *,
        app_id: uuid.UUID | None = None,
        failed_only: bool = False,
        since: int | None = None,
        limit: int = 100,
    ) -> list[JobRecord]:
        """The most recently updated jobs, newest first."""
        return await self._db.read(
            lambda conn: push_jobs.recent(
                conn, app_id=app_id, failed_only=failed_only, since=since, limit=limit
            )
        )

    async def status(self, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, JobStatus]:
        """The recorded status of jobs."""
        return await self._db.read(lambda conn: push_jobs.status(conn, list(job_ids)))
