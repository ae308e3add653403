"""Sending pushes: the durable queue's workers and the synchronous path.

Workers (:meth:`PushService.run`, in the root nursery) lease due jobs in batches, at
most ``concurrency`` in flight, deliver each through :class:`providers.client.PushClient`
and record the outcomes of many jobs in one transaction. What an outcome means:

========================  ==========================================================
sent                      job ``sent``
retry (429, 5xx, network) ``pending`` again after a jittered exponential delay that
                          honours ``Retry-After``, until ``max_attempts`` or expiry
failed (other 4xx, ...)   job ``failed`` with the provider's reason; never retried
unregistered / suspect    job ``failed``; the token is removed (compare-and-clear)
                          unless the app's circuit breaker is open
========================  ==========================================================

A worker that dies leaves its jobs leased; they come back when the lease (visibility
timeout) runs out, so a restart loses nothing.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import trio
from sqlalchemy.engine import Connection

from providers.client import Endpoints, PushClient, Target
from providers.h2pool import PoolConfig, client_ssl_context
from providers.message import Environment, Outcome, Platform, PushMessage, Verdict
from relay.crypto.sealing import SealingError, Vault
from relay.services.push.apps import AppCredentials, AppService
from relay.services.push.breaker import BreakerConfig, RemovalBreaker
from relay.services.push.e2ee import encrypted
from relay.services.push.invalidation import TokenInvalidator
from relay.services.push.retry import RetryPolicy
from relay.services.push.wakeups import Wakeups
from storage.db import Database
from storage.errors import StorageError
from storage.ids import MICROS_PER_SECOND, now_us
from storage.repos import push_jobs, push_tokens
from storage.repos.push_jobs import FAILED, PENDING, SENT, JobResult, LeasedJob, NewJob
from storage.repos.push_tokens import PushTokenRow, Removal

log = logging.getLogger("relay.push")

_RECORD_BATCH = 500
_RETENTION_BATCH = 1000
_RETENTION_INTERVAL_SECS = 300.0
_UNREADABLE = "the app's credentials do not open with the server key (was the key changed?)"


@dataclass(frozen=True)
class PushConfig:
    """How the push core sends."""

    endpoints: Endpoints = field(default_factory=Endpoints)
    pool: PoolConfig = field(default_factory=PoolConfig)
    ca_file: str | None = None
    concurrency: int = 100
    poll_interval: float = 1.0
    visibility_secs: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    wakeup_app: str = "relay"
    invalid_token_batch: int = 50
    invalid_token_interval: float = 5.0
    retention_secs: int = 86400
    breaker: BreakerConfig = field(default_factory=BreakerConfig)


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


@dataclass
class PlatformCounts:
    """What a synchronous send did, for one platform."""

    sent: int = 0
    failed: int = 0
    pending: int = 0

    @property
    def total(self) -> int:
        """All deliveries of the platform."""
        return self.sent + self.failed + self.pending


@dataclass
class PushStats:
    """Counters since start-up."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    expired: int = 0
    removals: int = 0
    removals_held: int = 0


@dataclass(frozen=True, slots=True)
class _Verdict:
    state: str
    reason: str | None
    delay_secs: float = 0.0
    removal: Removal | None = None


class PushService:
    """See the module docstring."""

    def __init__(
        self,
        db: Database,
        apps: AppService,
        vault: Vault,
        wakeups: Wakeups,
        config: PushConfig,
    ) -> None:
        self._db = db
        self._apps = apps
        self._vault = vault
        self.wakeups = wakeups
        self._config = config
        self._rng = random.Random()  # noqa: S311 (retry jitter)
        self._breaker = RemovalBreaker(config.breaker, time.monotonic)
        self.invalidator = TokenInvalidator(
            db, batch_size=config.invalid_token_batch, interval=config.invalid_token_interval
        )
        self._client: PushClient | None = None
        self._ready = trio.Event()
        self._wake = trio.Event()
        self.stats = PushStats()
        # Lease stamps: a per-process random prefix and a counter, within a signed BIGINT.
        self._lease_ids = iter(range(1, 1 << 40))
        self._lease_base = (int.from_bytes(uuid.uuid4().bytes[:3], "big") >> 2) << 40

    @property
    def breaker(self) -> RemovalBreaker:
        """The per-app removal circuit breaker."""
        return self._breaker

    @property
    def client(self) -> PushClient:
        """The provider client (available once :meth:`run` started)."""
        assert self._client is not None, "PushService.run is not running"
        return self._client

    def wake(self) -> None:
        """Look for due jobs now rather than at the next poll."""
        self._wake.set()

    async def run(
        self, stopping: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Deliver queued jobs until ``stopping``; then finish what is in flight."""
        ssl_context = client_ssl_context(self._config.ca_file)
        async with trio.open_nursery() as pools:
            self._client = PushClient(
                pools,
                endpoints=self._config.endpoints,
                pool_config=self._config.pool,
                ssl_context=ssl_context,
            )
            self._ready.set()
            task_status.started()
            try:
                async with trio.open_nursery() as helpers:
                    helpers.start_soon(self.invalidator.run, stopping)
                    helpers.start_soon(self._delete_finished, stopping)
                    helpers.start_soon(self._wake_on, stopping)
                    await self._work(stopping)
            finally:
                with trio.CancelScope(shield=True):
                    await self._client.aclose()
                pools.cancel_scope.cancel()

    async def _wake_on(self, stopping: trio.Event) -> None:
        await stopping.wait()
        self.wake()

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
                self._sealed_message(item).to_json(),
                expires_at=expires_at,
                campaign_id=campaign_id,
            )
            for item in deliveries
        ]

    @property
    def max_attempts(self) -> int:
        """Attempts a queued job gets."""
        return self._config.retry.max_attempts

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

    async def send_now(
        self, app_id: uuid.UUID, deliveries: Sequence[Delivery]
    ) -> dict[Platform, PlatformCounts]:
        """Send at once and count per platform; transient failures are queued for retry
        (counted as pending)."""
        await self._ready.wait()
        try:
            credentials = await self._apps.credentials(app_id)
        except SealingError:
            log.error("push app %s: %s", app_id, _UNREADABLE)
            credentials = AppCredentials()
        counts = {platform: PlatformCounts() for platform in Platform}
        retries: list[Delivery] = []
        limiter = trio.CapacityLimiter(self._config.concurrency)
        started = now_us()

        async def one(item: Delivery) -> None:
            async with limiter:
                message = self._sealed_message(item)
                verdict = await self._attempt(
                    app_id,
                    credentials,
                    item.platform,
                    item.environment,
                    item.token,
                    message,
                    attempt=1,
                    max_attempts=self._config.retry.max_attempts,
                    registered_before=started,
                )
            bucket = counts[item.platform]
            if verdict.state == SENT:
                bucket.sent += 1
            elif verdict.state == PENDING:
                bucket.pending += 1
                retries.append(item)
            else:
                bucket.failed += 1
            if verdict.removal is not None:
                await self.invalidator.add(verdict.removal)

        async with trio.open_nursery() as nursery:
            for item in deliveries:
                nursery.start_soon(one, item)
        if retries:
            await self.enqueue(app_id, retries)
        return counts

    async def status(self, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, push_jobs.JobStatus]:
        """The recorded status of jobs."""
        return await self._db.read(lambda conn: push_jobs.status(conn, list(job_ids)))

    def _sealed_message(self, item: Delivery) -> PushMessage:
        if item.push_key is None:
            return item.message
        return encrypted(item.message, item.push_key, dict(item.extra))

    # --- the worker -----------------------------------------------------------------------

    async def _work(self, stopping: trio.Event) -> None:
        permits = trio.Semaphore(self._config.concurrency)
        send, receive = trio.open_memory_channel[tuple[LeasedJob, _Verdict]](
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
                        with trio.move_on_after(wait):
                            await self._wake.wait()
                        self._wake = trio.Event()

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
        self.stats.expired += taken.expired
        leased = [
            (job, registrations.get(job.device_id) if job.device_id else None) for job in taken.jobs
        ]
        return leased, taken.next_due

    async def _deliver(
        self,
        job: LeasedJob,
        registration: PushTokenRow | None,
        results: trio.MemorySendChannel[tuple[LeasedJob, _Verdict]],
    ) -> None:
        async with results:
            try:
                verdict = await self._deliver_job(job, registration)
            except Exception as error:
                # A bug or a storage failure must not take the workers (and the server)
                # down: the job is retried like a transient failure, within its cap.
                log.exception("push job %s failed unexpectedly", job.id)
                outcome = Outcome(Verdict.RETRY, f"internal error: {type(error).__name__}")
                verdict = self._judge(job.app_id, outcome, "", job.attempts, job.max_attempts, 0)
            if verdict.removal is not None:
                await self.invalidator.add(verdict.removal)
            await results.send((job, verdict))

    async def _deliver_job(self, job: LeasedJob, registration: PushTokenRow | None) -> _Verdict:
        if job.device_id is not None:
            if registration is None:
                return _Verdict(FAILED, "device has no push token")
            app_id = await self._apps.app_id(self._config.wakeup_app)
            if app_id is None:
                return _Verdict(FAILED, f"no push app named {self._config.wakeup_app!r}")
            message = self.wakeups.message(now_secs=int(time.time()))
            if registration.push_key is not None:
                try:
                    message = encrypted(message, self._vault.open(registration.push_key))
                except SealingError:
                    return _Verdict(FAILED, "the device's push key cannot be opened")
            platform = Platform(registration.platform)
            environment = Environment(registration.environment)
            token = registration.token
            registered_before = registration.updated_at + 1
        else:
            assert job.app_id is not None
            assert job.platform is not None
            assert job.token is not None
            assert job.message is not None
            app_id = job.app_id
            platform = Platform(job.platform)
            environment = Environment(job.environment or Environment.PRODUCTION.value)
            token = job.token
            message = PushMessage.from_json(job.message)
            registered_before = job.created_at
        try:
            credentials = await self._apps.credentials(app_id)
        except SealingError:
            return _Verdict(FAILED, _UNREADABLE)
        return await self._attempt(
            app_id,
            credentials,
            platform,
            environment,
            token,
            message,
            attempt=job.attempts,
            max_attempts=job.max_attempts,
            registered_before=registered_before,
        )

    async def _attempt(
        self,
        app_id: uuid.UUID,
        credentials: AppCredentials,
        platform: Platform,
        environment: Environment,
        token: str,
        message: PushMessage,
        *,
        attempt: int,
        max_attempts: int,
        registered_before: int,
    ) -> _Verdict:
        configured = credentials.of(platform)
        if configured is None:
            return _Verdict(FAILED, f"the app has no {platform.value} credentials")
        outcome = await self.client.send(Target(platform, token, configured, environment), message)
        return self._judge(app_id, outcome, token, attempt, max_attempts, registered_before)

    def _judge(
        self,
        app_id: uuid.UUID | None,
        outcome: Outcome,
        token: str,
        attempt: int,
        max_attempts: int,
        registered_before: int,
    ) -> _Verdict:
        removal_reason = (
            outcome.reason
            if outcome.verdict in (Verdict.UNREGISTERED, Verdict.TOKEN_SUSPECT)
            else None
        )
        self._breaker.record(app_id, removal_reason)
        if outcome.verdict is Verdict.SENT:
            self.stats.sent += 1
            return _Verdict(SENT, None)
        if outcome.verdict is Verdict.RETRY:
            if attempt >= max_attempts:
                self.stats.failed += 1
                return _Verdict(FAILED, f"gave up after {attempt} attempts: {outcome.reason}")
            self.stats.retried += 1
            delay = self._config.retry.delay(attempt, outcome.retry_after, self._rng)
            return _Verdict(PENDING, f"retrying: {outcome.reason}", delay)
        self.stats.failed += 1
        if removal_reason is None:
            return _Verdict(FAILED, outcome.reason)
        if not self._breaker.allows_removal(app_id):
            self.stats.removals_held += 1
            return _Verdict(FAILED, f"{outcome.reason} (token kept: removal breaker open)")
        before = registered_before
        if outcome.unregistered_at_ms is not None:
            # APNs says since when the token is invalid: keep it if registered after that.
            before = outcome.unregistered_at_ms * 1000
        self.stats.removals += 1
        return _Verdict(FAILED, outcome.reason, removal=Removal(token, before))

    async def _record(
        self,
        results: trio.MemoryReceiveChannel[tuple[LeasedJob, _Verdict]],
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

    async def _store(self, batch: list[tuple[LeasedJob, _Verdict]]) -> None:
        now = now_us()
        rows = [
            JobResult(
                job.id,
                job.lease,
                verdict.state,
                verdict.reason,
                now + int(verdict.delay_secs * MICROS_PER_SECOND),
            )
            for job, verdict in batch
        ]
        try:
            await self._db.write(lambda conn: push_jobs.record(conn, rows, now=now))
        except StorageError as error:
            # The leases run out and the jobs are delivered again: at-least-once.
            log.warning("could not record %d push outcomes: %s", len(rows), error)
        if any(verdict.state == PENDING for _, verdict in batch):
            self.wake()

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
