"""The durable queue's workers: lease due jobs, deliver them, record the outcomes.

Workers lease due jobs in batches, at most ``concurrency`` in flight, deliver each through
:meth:`relay.services.push.sender.PushSender.attempt` and record the decisions of many
jobs in one transaction. A worker that dies leaves its jobs leased; they come back when
the lease (visibility timeout) runs out, so a restart loses nothing. Finished jobs are
deleted after ``retention_secs``.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass

import trio
from sqlalchemy.engine import Connection

from providers.message import Environment, Outcome, Platform, PushMessage, Verdict
from relay.crypto.sealing import SealingError
from relay.services.push.apps import AppService
from relay.services.push.config import PushConfig
from relay.services.push.feedback import FeedbackHook, job_failed
from relay.services.push.invalidation import TokenInvalidator
from relay.services.push.outcomes import Decision, PushStats, refused
from relay.services.push.queue import DueSignal
from relay.services.push.sender import UNREADABLE, PushSender
from relay.services.push.wakeups import Wakeups
from storage.db import Database
from storage.errors import StorageError
from storage.ids import MICROS_PER_SECOND, now_us
from storage.repos import push_jobs, push_tokens
from storage.repos.push_jobs import JobResult, JobState, LeasedJob
from storage.repos.push_tokens import PushTokenRow

log = logging.getLogger("relay.push")

_RECORD_BATCH = 500
_RETENTION_BATCH = 1000
_RETENTION_INTERVAL_SECS = 300.0


@dataclass(frozen=True, slots=True)
class _Send:
    """What one job sends, to whom."""

    app_id: uuid.UUID
    target: tuple[Platform, Environment, str]
    message: PushMessage
    registered_before: int


class PushWorker:
    """See the module docstring."""

    def __init__(
        self,
        db: Database,
        apps: AppService,
        wakeups: Wakeups,
        sender: PushSender,
        due: DueSignal,
        invalidator: TokenInvalidator,
        stats: PushStats,
        config: PushConfig,
        feedback: FeedbackHook | None = None,
    ) -> None:
        self._db = db
        self._apps = apps
        self._wakeups = wakeups
        self._sender = sender
        self._feedback = feedback
        self._due = due
        self._invalidator = invalidator
        self._stats = stats
        self._config = config
        self._rng = random.Random()  # noqa: S311 (retry jitter)
        # Lease stamps: a per-process random prefix and a counter, within a signed BIGINT.
        self._lease_ids = iter(range(1, 1 << 40))
        self._lease_base = (int.from_bytes(uuid.uuid4().bytes[:3], "big") >> 2) << 40

    async def run(self, stopping: trio.Event) -> None:
        """Deliver queued jobs until ``stopping``; then finish what is in flight."""
        async with trio.open_nursery() as helpers:
            helpers.start_soon(self._invalidator.run, stopping)
            helpers.start_soon(self._delete_finished, stopping)
            helpers.start_soon(self._wake_on, stopping)
            await self._work(stopping)

    async def _wake_on(self, stopping: trio.Event) -> None:
        await stopping.wait()
        self._due.set()

    async def _work(self, stopping: trio.Event) -> None:
        permits = trio.Semaphore(self._config.concurrency)
        send, receive = trio.open_memory_channel[tuple[LeasedJob, Decision, float]](
            self._config.concurrency
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._record, receive, permits)
            async with send:
                while not stopping.is_set():
                    if permits.value == 0:
                        await permits.acquire()
                        permits.release()
                        continue
                    limit = permits.value
                    leased, next_due = await self._lease(limit)
                    for job, registration in leased:
                        await permits.acquire()
                        nursery.start_soon(self._deliver, job, registration, send.clone())
                    if len(leased) < limit:
                        # Sleep until the next job is due, but poll at least every
                        # interval: other processes and services queue jobs too.
                        wait = self._config.poll_interval
                        if next_due is not None:
                            wait = min(wait, max(0.0, (next_due - now_us()) / MICROS_PER_SECOND))
                        await self._due.wait(wait)

    async def _lease(
        self, limit: int
    ) -> tuple[list[tuple[LeasedJob, PushTokenRow | None]], int | None]:
        now = now_us()
        lease_id = self._lease_base + next(self._lease_ids)
        visibility = int(self._config.visibility_secs * MICROS_PER_SECOND)

        def work(
            conn: Connection,
        ) -> tuple[push_jobs.Lease, dict[uuid.UUID, PushTokenRow]]:
            taken = push_jobs.lease(
                conn, now=now, limit=limit, visibility_us=visibility, lease_id=lease_id
            )
            devices = [job.device_id for job in taken.jobs if job.device_id is not None]
            return taken, push_tokens.of_devices(conn, devices)

        try:
            taken, registrations = await self._db.write(work)
        except StorageError as error:
            log.warning("could not lease push jobs: %s", error)
            return [], None
        self._stats.expired += taken.expired
        leased = [
            (job, registrations.get(job.device_id) if job.device_id else None) for job in taken.jobs
        ]
        return leased, taken.next_due

    async def _deliver(
        self,
        job: LeasedJob,
        registration: PushTokenRow | None,
        results: trio.MemorySendChannel[tuple[LeasedJob, Decision, float]],
    ) -> None:
        async with results:
            try:
                decision = await self._deliver_job(job, registration)
            except Exception as error:
                # A bug or a storage failure must not take the workers (and the server)
                # down: the job is retried like a transient failure, within its cap.
                log.exception("push job %s failed unexpectedly", job.id)
                outcome = Outcome(Verdict.RETRY, f"internal error: {type(error).__name__}")
                decision = await self._sender.judge(
                    job.app_id,
                    outcome,
                    token="",
                    attempt=job.attempts,
                    max_attempts=job.max_attempts,
                    registered_before=0,
                )
            delay = 0.0
            if decision.state is JobState.PENDING:
                delay = self._config.retry.delay(job.attempts, decision.retry_after, self._rng)
            await results.send((job, decision, delay))

    async def _deliver_job(self, job: LeasedJob, registration: PushTokenRow | None) -> Decision:
        send = await self._what_to_send(job, registration)
        if isinstance(send, Decision):
            return send
        try:
            credentials = await self._apps.credentials(send.app_id)
        except SealingError:
            return refused(UNREADABLE)
        return await self._sender.attempt(
            send.app_id,
            credentials,
            send.target,
            send.message,
            attempt=job.attempts,
            max_attempts=job.max_attempts,
            registered_before=send.registered_before,
        )

    async def _what_to_send(
        self, job: LeasedJob, registration: PushTokenRow | None
    ) -> _Send | Decision:
        if job.device_id is None:
            assert job.app_id is not None
            assert job.platform is not None
            assert job.token is not None
            assert job.message is not None
            environment = Environment(job.environment or Environment.PRODUCTION.value)
            return _Send(
                job.app_id,
                (Platform(job.platform), environment, job.token),
                PushMessage.from_json(job.message),
                job.created_at,
            )
        # A relay wake-up: the device's current token, read when sent.
        if registration is None:
            return refused("device has no push token")
        app_id = await self._apps.app_id(self._config.wakeup_app)
        if app_id is None:
            return refused(f"no push app named {self._config.wakeup_app!r}")
        try:
            message = self._wakeups.message_for(registration.push_key, now_secs=int(time.time()))
        except SealingError:
            return refused("the device's push key cannot be opened")
        target = (
            Platform(registration.platform),
            Environment(registration.environment),
            registration.token,
        )
        return _Send(app_id, target, message, registration.updated_at + 1)

    async def _record(
        self,
        results: trio.MemoryReceiveChannel[tuple[LeasedJob, Decision, float]],
        permits: trio.Semaphore,
    ) -> None:
        async with results:
            async for first in results:
                batch = [first]
                while len(batch) < _RECORD_BATCH:
                    try:
                        batch.append(results.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                await self._store(batch)
                for _ in batch:
                    permits.release()

    async def _store(self, batch: list[tuple[LeasedJob, Decision, float]]) -> None:
        now = now_us()
        rows = [
            JobResult(
                job.id,
                job.lease,
                decision.state,
                decision.reason,
                now + int(delay * MICROS_PER_SECOND),
            )
            for job, decision, delay in batch
        ]
        failed = [
            job_failed(
                job.id, job.app_id, job.platform, job.token, decision.reason, job.attempts, now
            )
            for job, decision, _ in batch
            if decision.state is JobState.FAILED
        ]
        feedback = self._feedback

        def work(conn: Connection) -> None:
            push_jobs.record(conn, rows, now=now)
            if feedback is not None and failed:
                feedback.queue(conn, failed, now=now)

        try:
            await self._db.write(work)
            if feedback is not None and failed:
                feedback.wake()
        except StorageError as error:
            # The leases run out and the jobs are delivered again: at-least-once.
            log.warning("could not record %d push outcomes: %s", len(rows), error)
        if any(decision.state is JobState.PENDING for _, decision, _ in batch):
            self._due.set()

    async def _delete_finished(self, stopping: trio.Event) -> None:
        retention = self._config.retention_secs * MICROS_PER_SECOND
        while not stopping.is_set():
            with trio.move_on_after(_RETENTION_INTERVAL_SECS):
                await stopping.wait()
            if stopping.is_set():
                return
            try:
                await self._db.write(
                    lambda conn: push_jobs.delete_finished(
                        conn, before=now_us() - retention, limit=_RETENTION_BATCH
                    )
                )
            except StorageError as error:
                log.warning("could not delete finished push jobs: %s", error)
