"""One attempt at a provider, and synchronous sends.

:class:`PushSender` owns the provider client (HTTP/2 pools to APNs, FCM and HMS) for as
long as :meth:`PushSender.run` runs; the workers deliver queued jobs through
:meth:`PushSender.attempt`, the API's synchronous sends through :meth:`PushSender.send_now`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import trio

from providers.client import PushClient, Target
from providers.message import Environment, Outcome, Platform, PushMessage, Verdict
from relay.crypto.sealing import SealingError
from relay.observability import metrics
from relay.services.push.apps import AppCredentials, AppService
from relay.services.push.breaker import RemovalBreaker
from relay.services.push.config import PushConfig
from relay.services.push.invalidation import TokenInvalidator
from relay.services.push.outcomes import (
    Decision,
    OutcomeWarnings,
    PushStats,
    decide,
    refused,
    removal_reason,
)
from relay.services.push.queue import Delivery, PushQueue
from storage.errors import StorageError
from storage.ids import now_us
from storage.repos.push_jobs import JobState

log = logging.getLogger("relay.push")

# Failures of one kind for one app and provider: one warning per this many seconds.
WARNING_INTERVAL_SECS = 60.0
UNREADABLE = "the app's credentials do not open with the server key (was the key changed?)"


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


class PushSender:
    """See the module docstring."""

    def __init__(
        self,
        apps: AppService,
        queue: PushQueue,
        invalidator: TokenInvalidator,
        breaker: RemovalBreaker,
        stats: PushStats,
        config: PushConfig,
    ) -> None:
        self._apps = apps
        self._queue = queue
        self._invalidator = invalidator
        self._breaker = breaker
        self._stats = stats
        self._config = config
        self._client: PushClient | None = None
        self._warnings = OutcomeWarnings(WARNING_INTERVAL_SECS)
        self._ready = trio.Event()

    def pool_usage(self) -> dict[str, tuple[int, int]]:
        """Per provider, open connections and streams in use (empty until running)."""
        usage: dict[str, tuple[int, int]] = {}
        if self._client is None:
            return usage
        for key, pool in self._client.pools():
            connections, streams = usage.get(key, (0, 0))
            usage[key] = (connections + pool.connections, streams + pool.streams_in_use)
        return usage

    @property
    def client(self) -> PushClient:
        """The provider client (available once :meth:`run` started)."""
        assert self._client is not None, "PushSender.run is not running"
        return self._client

    async def run(
        self, stopping: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Hold the provider client open until ``stopping``."""
        async with trio.open_nursery() as pools:
            self._client = PushClient(
                pools,
                endpoints=self._config.endpoints,
                pool_config=self._config.pool,
                ssl_context=self._config.ssl_context(),
            )
            self._ready.set()
            task_status.started()
            try:
                await stopping.wait()
            finally:
                with trio.CancelScope(shield=True):
                    await self._client.aclose()
                pools.cancel_scope.cancel()

    async def attempt(
        self,
        app_id: uuid.UUID,
        credentials: AppCredentials,
        target: tuple[Platform, Environment, str],
        message: PushMessage,
        *,
        attempt: int,
        max_attempts: int,
        registered_before: int,
    ) -> Decision:
        """Send once to ``target`` (platform, environment, token) and :meth:`judge`."""
        platform, environment, token = target
        configured = credentials.of(platform)
        if configured is None:
            return refused(f"the app has no {platform.value} credentials")
        outcome = await self.client.send(Target(platform, token, configured, environment), message)
        return await self.judge(
            app_id,
            outcome,
            token=token,
            attempt=attempt,
            max_attempts=max_attempts,
            registered_before=registered_before,
            provider=platform.value,
        )

    async def judge(
        self,
        app_id: uuid.UUID | None,
        outcome: Outcome,
        *,
        token: str,
        attempt: int,
        max_attempts: int,
        registered_before: int,
        provider: str = "none",
    ) -> Decision:
        """Decide on ``outcome`` (:func:`relay.services.push.outcomes.decide`) with the app's
        removal breaker, count the decision (``provider``: the platform sent to) and hand
        its token removal to the invalidator."""
        reason = removal_reason(outcome)
        self._breaker.record(app_id, reason)
        decision = decide(
            outcome,
            attempt=attempt,
            max_attempts=max_attempts,
            token=token,
            registered_before=registered_before,
            removal_allowed=reason is None or self._breaker.allows_removal(app_id),
        )
        self._stats.count(decision.effect)
        app = "none" if app_id is None else str(app_id)
        metrics.PUSH_JOBS.labels(app, provider, decision.effect.value, outcome.verdict.value).inc()
        warning = self._warnings.note(app, provider, outcome, decision.effect, time.monotonic())
        if warning is not None:
            log.warning("%s", warning)
        if decision.removal is not None:
            # Why, for the operator's feedback hook.
            removal = dataclasses.replace(
                decision.removal, app_id=app_id, platform=provider, reason=outcome.reason
            )
            await self._invalidator.add(removal)
        return decision

    async def send_now(
        self, app_id: uuid.UUID, deliveries: Sequence[Delivery]
    ) -> dict[Platform, PlatformCounts]:
        """Send at once and count per platform; transient failures are queued for retry
        (counted as pending)."""
        await self._ready.wait()
        try:
            credentials = await self._apps.credentials(app_id)
        except SealingError:
            log.error("push app %s: %s", app_id, UNREADABLE)
            credentials = AppCredentials()
        counts = {platform: PlatformCounts() for platform in Platform}
        retries: list[Delivery] = []
        finished: list[tuple[Delivery, JobState, str | None]] = []
        limiter = trio.CapacityLimiter(self._config.concurrency)
        started = now_us()

        async def one(item: Delivery) -> None:
            async with limiter:
                decision = await self.attempt(
                    app_id,
                    credentials,
                    (item.platform, item.environment, item.token),
                    item.message_to_send(),
                    attempt=1,
                    max_attempts=self._config.retry.max_attempts,
                    registered_before=started,
                )
            bucket = counts[item.platform]
            if decision.state is JobState.SENT:
                bucket.sent += 1
            elif decision.state is JobState.PENDING:
                bucket.pending += 1
                retries.append(item)
            else:
                bucket.failed += 1
            if decision.state is not JobState.PENDING:
                finished.append((item, decision.state, decision.reason))

        async with trio.open_nursery() as nursery:
            for item in deliveries:
                nursery.start_soon(one, item)
        if retries:
            await self._queue.enqueue(app_id, retries)
        if finished:
            # Listed with the queued ones (relay push jobs); the counts are the answer,
            # so a record that cannot be written is logged rather than failing the send.
            try:
                await self._queue.record_finished(app_id, finished)
            except StorageError as error:
                log.warning("could not record %d synchronous sends: %s", len(finished), error)
        return counts


TEST_MESSAGE = PushMessage(title="relay", body="Test notification", data={"relay": "test"})


async def probe(
    config: PushConfig,
    credentials: AppCredentials,
    target: tuple[Platform, Environment, str],
    message: PushMessage = TEST_MESSAGE,
) -> Outcome:
    """Send one notification outside the queue (``relay push test``) and return the
    provider's verdict as is: nothing is recorded, no token is removed."""
    platform, environment, token = target
    configured = credentials.of(platform)
    if configured is None:
        return Outcome(Verdict.FAILED, f"the app has no {platform.value} credentials")
    async with trio.open_nursery() as pools:
        client = PushClient(
            pools,
            endpoints=config.endpoints,
            pool_config=config.pool,
            ssl_context=config.ssl_context(),
        )
        try:
            return await client.send(Target(platform, token, configured, environment), message)
        finally:
            await client.aclose()
            pools.cancel_scope.cancel()
