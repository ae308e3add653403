"""The durable push queue (see the ``push_jobs`` table in :mod:`storage.schema`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from storage.ids import uuid7
from storage.schema import push_jobs


class JobState(StrEnum):
    """Where a job is: due now or later, delivered, or given up on (the stored values)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


_WAKEUP_PREFIX = "wakeup:"


@dataclass(frozen=True, slots=True)
class NewJob:
    """A delivery to queue."""

    app_id: uuid.UUID | None
    platform: str
    environment: str
    token: str
    message: str
    expires_at: int | None = None
    coalesce_key: str | None = None
    campaign_id: int | None = None


@dataclass(frozen=True, slots=True)
class LeasedJob:
    """A job a worker now owns until its lease runs out."""

    id: uuid.UUID
    app_id: uuid.UUID | None
    device_id: uuid.UUID | None
    platform: str | None
    environment: str | None
    token: str | None
    message: str | None
    attempts: int
    max_attempts: int
    expires_at: int | None
    lease: int
    created_at: int


@dataclass(frozen=True, slots=True)
class JobResult:
    """What became of a leased job."""

    id: uuid.UUID
    lease: int
    state: JobState
    reason: str | None
    next_attempt_at: int


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A job's recorded status."""

    id: uuid.UUID
    state: JobState
    attempts: int
    reason: str | None
    next_attempt_at: int
    updated_at: int


def wakeup_key(device_id: uuid.UUID) -> str:
    """The coalesce key of a device's wake-up."""
    return f"{_WAKEUP_PREFIX}{device_id}"


def _insert_ignoring_pending_duplicates(conn: Connection, rows: list[dict[str, Any]]) -> None:
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = module.insert(push_jobs).on_conflict_do_nothing(
        index_elements=["coalesce_key"], index_where=text("state = 'pending'")
    )
    conn.execute(statement, rows)


def enqueue(
    conn: Connection, jobs: Sequence[NewJob], *, now: int, max_attempts: int
) -> list[uuid.UUID]:
    """Queue ``jobs`` due now; a job whose coalesce key is already pending is dropped."""
    ids = [uuid7() for _ in jobs]
    rows = [
        _row(job_id, job, JobState.PENDING, None, attempts=0, now=now, max_attempts=max_attempts)
        for job_id, job in zip(ids, jobs, strict=True)
    ]
    if rows:
        _insert_ignoring_pending_duplicates(conn, rows)
    return ids


def _row(
    job_id: uuid.UUID,
    job: NewJob,
    state: JobState,
    reason: str | None,
    *,
    attempts: int,
    now: int,
    max_attempts: int,
) -> dict[str, Any]:
    """The ``push_jobs`` row of a new job (a finished one keeps no coalesce key)."""
    return {
        "id": job_id,
        "app_id": job.app_id,
        "device_id": None,
        "platform": job.platform,
        "environment": job.environment,
        "token": job.token,
        "message": job.message,
        "coalesce_key": job.coalesce_key if state is JobState.PENDING else None,
        "campaign_id": job.campaign_id,
        "state": state,
        "attempts": attempts,
        "max_attempts": max_attempts,
        "next_attempt_at": now,
        "lease": None,
        "expires_at": job.expires_at,
        "reason": reason,
        "created_at": now,
        "updated_at": now,
    }


def record_finished(
    conn: Connection,
    jobs: Sequence[tuple[NewJob, JobState, str | None]],
    *,
    now: int,
    max_attempts: int,
) -> list[uuid.UUID]:
    """Record deliveries already attempted once (synchronous sends): their final state
    and reason, so that they are listed like queued ones; their ids."""
    ids = [uuid7() for _ in jobs]
    rows = [
        _row(job_id, job, state, reason, attempts=1, now=now, max_attempts=max_attempts)
        for job_id, (job, state, reason) in zip(ids, jobs, strict=True)
    ]
    if rows:
        conn.execute(push_jobs.insert(), rows)
    return ids


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job as an operator sees it."""

    id: uuid.UUID
    app_id: uuid.UUID | None
    platform: str | None
    token: str | None
    state: str
    attempts: int
    reason: str | None
    created_at: int
    updated_at: int


def recent(
    conn: Connection,
    *,
    app_id: uuid.UUID | None = None,
    failed_only: bool = False,
    since: int | None = None,
    limit: int = 100,
) -> list[JobRecord]:
    """The most recently updated jobs, newest first (wake-ups of devices included)."""
    query = select(
        push_jobs.c.id,
        push_jobs.c.app_id,
        push_jobs.c.platform,
        push_jobs.c.token,
        push_jobs.c.state,
        push_jobs.c.attempts,
        push_jobs.c.reason,
        push_jobs.c.created_at,
        push_jobs.c.updated_at,
    )
    if app_id is not None:
        query = query.where(push_jobs.c.app_id == app_id)
    if failed_only:
        query = query.where(push_jobs.c.state == JobState.FAILED)
    if since is not None:
        query = query.where(push_jobs.c.updated_at >= since)
    query = query.order_by(push_jobs.c.updated_at.desc(), push_jobs.c.id.desc()).limit(limit)
    return [JobRecord(*row) for row in conn.execute(query)]


def schedule_wakeups(
    conn: Connection,
    device_ids: Sequence[uuid.UUID],
    *,
    now: int,
    due: int,
    expires_at: int,
    max_attempts: int,
) -> None:
    """One pending wake-up per device, due at ``due``; an existing one keeps its time."""
    if not device_ids:
        return
    rows = [
        {
            "id": uuid7(),
            "app_id": None,
            "device_id": device_id,
            "platform": None,
            "environment": None,
            "token": None,
            "message": None,
            "coalesce_key": wakeup_key(device_id),
            "campaign_id": None,
            "state": JobState.PENDING,
            "attempts": 0,
            "max_attempts": max_attempts,
            "next_attempt_at": due,
            "lease": None,
            "expires_at": expires_at,
            "reason": None,
            "created_at": now,
            "updated_at": now,
        }
        for device_id in sorted(set(device_ids))
    ]
    _insert_ignoring_pending_duplicates(conn, rows)


def cancel_wakeups(conn: Connection, device_ids: Sequence[uuid.UUID]) -> int:
    """Drop the devices' pending wake-ups that no worker is sending right now."""
    if not device_ids:
        return 0
    keys = [wakeup_key(device_id) for device_id in set(device_ids)]
    result = conn.execute(
        delete(push_jobs).where(
            push_jobs.c.coalesce_key.in_(keys),
            push_jobs.c.state == JobState.PENDING,
            push_jobs.c.lease.is_(None),
        )
    )
    return result.rowcount


def backlog(conn: Connection, *, now: int) -> tuple[int, int | None]:
    """Pending jobs, and the earliest ``next_attempt_at`` among those due (None: none
    due)."""
    pending = push_jobs.c.state == JobState.PENDING
    count = conn.execute(select(func.count()).select_from(push_jobs).where(pending)).scalar_one()
    oldest = conn.execute(
        select(func.min(push_jobs.c.next_attempt_at)).where(
            pending, push_jobs.c.next_attempt_at <= now
        )
    ).scalar_one()
    return int(count), None if oldest is None else int(oldest)


@dataclass(frozen=True, slots=True)
class Lease:
    """What one leasing round took."""

    jobs: list[LeasedJob]
    expired: int
    next_due: int | None  # when the earliest job still pending is due


def lease(conn: Connection, *, now: int, limit: int, visibility_us: int, lease_id: int) -> Lease:
    """Take up to ``limit`` due jobs; also fail the due jobs that already expired.

    On PostgreSQL competing workers skip each other's rows (``FOR UPDATE SKIP LOCKED``);
    SQLite has one writer at a time.
    """
    expired = conn.execute(
        update(push_jobs)
        .where(
            push_jobs.c.state == JobState.PENDING,
            push_jobs.c.next_attempt_at <= now,
            push_jobs.c.expires_at < now,
        )
        .values(state=JobState.FAILED, reason="expired before delivery", lease=None, updated_at=now)
    ).rowcount
    due = (
        select(push_jobs.c.id)
        .where(push_jobs.c.state == JobState.PENDING, push_jobs.c.next_attempt_at <= now)
        .order_by(push_jobs.c.next_attempt_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = [row[0] for row in conn.execute(due)]
    if not ids:
        return Lease([], expired, next_due(conn))
    conn.execute(
        update(push_jobs)
        .where(push_jobs.c.id.in_(ids))
        .values(
            next_attempt_at=now + visibility_us,
            lease=lease_id,
            attempts=push_jobs.c.attempts + 1,
            updated_at=now,
        )
    )
    rows = conn.execute(select(push_jobs).where(push_jobs.c.id.in_(ids)))
    jobs = [
        LeasedJob(
            row.id,
            row.app_id,
            row.device_id,
            row.platform,
            row.environment,
            row.token,
            row.message,
            row.attempts,
            row.max_attempts,
            row.expires_at,
            row.lease,
            row.created_at,
        )
        for row in rows
    ]
    order = {job_id: index for index, job_id in enumerate(ids)}
    jobs.sort(key=lambda job: order[job.id])
    return Lease(jobs, expired, next_due(conn))


def record(conn: Connection, results: Sequence[JobResult], *, now: int) -> int:
    """Store outcomes of leased jobs; a result whose lease was lost is ignored."""
    if not results:
        return 0
    statement = (
        update(push_jobs)
        .where(and_(push_jobs.c.id == bindparam("b_id"), push_jobs.c.lease == bindparam("b_lease")))
        .values(
            state=bindparam("b_state"),
            reason=bindparam("b_reason"),
            next_attempt_at=bindparam("b_next"),
            lease=None,
            updated_at=now,
        )
    )
    result = conn.execute(
        statement,
        [
            {
                "b_id": item.id,
                "b_lease": item.lease,
                "b_state": item.state,
                "b_reason": item.reason,
                "b_next": item.next_attempt_at,
            }
            for item in results
        ],
    )
    return max(result.rowcount, 0)


def status(conn: Connection, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, JobStatus]:
    """The recorded status of jobs."""
    if not job_ids:
        return {}
    rows = conn.execute(select(push_jobs).where(push_jobs.c.id.in_(job_ids)))
    return {
        row.id: JobStatus(
            row.id,
            JobState(row.state),
            row.attempts,
            row.reason,
            row.next_attempt_at,
            row.updated_at,
        )
        for row in rows
    }


def counts(conn: Connection) -> dict[str, int]:
    """Jobs per state."""
    rows = conn.execute(select(push_jobs.c.state, func.count()).group_by(push_jobs.c.state))
    return {str(row[0]): int(row[1]) for row in rows}


def campaign_counts(conn: Connection, campaign_id: int) -> dict[str, int]:
    """Jobs of a campaign by state (finished ones until they are deleted)."""
    rows = conn.execute(
        select(push_jobs.c.state, func.count())
        .where(push_jobs.c.campaign_id == campaign_id)
        .group_by(push_jobs.c.state)
    )
    return {row[0]: row[1] for row in rows}


def next_due(conn: Connection) -> int | None:
    """When the earliest pending job is due."""
    return conn.execute(
        select(func.min(push_jobs.c.next_attempt_at)).where(push_jobs.c.state == JobState.PENDING)
    ).scalar()


def delete_finished(conn: Connection, *, before: int, limit: int) -> int:
    """Delete up to ``limit`` sent or failed jobs last updated before ``before``."""
    ids = (
        select(push_jobs.c.id)
        .where(
            push_jobs.c.state.in_((JobState.SENT, JobState.FAILED)), push_jobs.c.updated_at < before
        )
        .limit(limit)
    )
    return conn.execute(delete(push_jobs).where(push_jobs.c.id.in_(ids))).rowcount
